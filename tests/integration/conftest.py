"""Integration test harness: real server processes on 127.0.0.1, real clients.

The target is chosen by the environment:
  HY_TARGET=halyard (default)  $HALYARD_BIN --bind 127.0.0.1 --port P --data-dir DIR [flags]
  HY_TARGET=redis              redis-server --port P --bind 127.0.0.1 --save "" --appendonly no
Running the same tests against Debian's redis-server checks that every expected reply really is
what Redis 7.0 answers. Tests that need halyard-only behaviour carry @pytest.mark.halyard_only.

Every wait is a loop on a condition with a deadline; nothing sleeps blindly. A server is
stopped by PID with SIGTERM and must exit 0 within a deadline; SIGKILL is only a last resort
and then the test fails.
"""

import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

TARGET = os.environ.get("HY_TARGET", "halyard")
IS_REDIS = TARGET == "redis"
START_DEADLINE = 15.0
STOP_DEADLINE = 15.0

# Redis spells a few settings differently; halyard takes them as plain flags.
_REDIS_FLAG_MAP = {
    "log-level": lambda v: ["--loglevel", v],
    "client-output-buffer-limit": lambda v: ["--client-output-buffer-limit", "normal %s %s 0" % (v, v)],
}


def pytest_configure(config):
    config.addinivalue_line("markers", "halyard_only: behaviour Redis does not share (skipped for HY_TARGET=redis)")
    # An exception that ends a thread a test started fails that test (pytest only warns by
    # default, and a test whose writer threads died could pass on the survivors).
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")


# make test runs the files on two workers (pytest-xdist, --dist loadgroup). A file is one group:
# its module-scoped clusters start once, on one worker. The two files of network-namespace tests
# share one group, since both take the 10.213.0.0/24 subnet and its bridge; they run one after
# the other. Other tests pick their ports in their worker's own range (cluster.free_port_pair).
# The longest file, Redis's own suite, goes first so that the other worker runs everything else
# meanwhile.
GROUPS = {"test_discovery.py": "netns", "test_gossip_netns.py": "netns"}
FIRST = "test_redis_suite.py"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        name = os.path.basename(str(item.fspath))
        item.add_marker(pytest.mark.xdist_group(GROUPS.get(name, name)))
    items.sort(key=lambda item: os.path.basename(str(item.fspath)) != FIRST)  # stable
    if not IS_REDIS:
        return
    skip = pytest.mark.skip(reason="halyard-only behaviour")
    for item in items:
        if "halyard_only" in item.keywords:
            item.add_marker(skip)


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE towards `want`; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a condition may raise while it is "not yet true": a connection refused, reset or timed
# out while a node starts, stops or elects (OSError, redis-py's errors), a field missing from
# INFO or a reply of another type while the state changes (LookupError, ValueError, TypeError,
# AttributeError). Never AssertionError: that is a check that failed.
RETRY_ON = (OSError, redis.RedisError, LookupError, ValueError, TypeError, AttributeError)


def wait_for(cond, deadline_s, what, interval=0.02, retry_on=RETRY_ON):
    """Polls cond() until it returns a truthy value or the deadline passes (then fails).

    A falsy value, or an exception in `retry_on`, means "not yet": cond() is called again.
    Anything else cond() raises ends the wait at once and fails the test, an AssertionError
    in particular: conditions assert their safety checks on every observation, and a check
    that failed once must not be forgotten because a later poll succeeds."""
    assert not any(issubclass(e, AssertionError) for e in retry_on), "assertions are never retried"
    end = time.monotonic() + deadline_s
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except retry_on as e:
            last_exc = e
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)" % (deadline_s, what, last_exc))
        time.sleep(interval)


# ---- a minimal RESP2/RESP3 client for exact bytes ------------------------------------------


class Worker(threading.Thread):
    """A test's helper thread that keeps the exception that ended it, so that join_all() can
    fail the test with it (a thread's exception never reaches the test by itself)."""

    def __init__(self, target, args=(), name=None):
        super().__init__(name=name, daemon=True)
        self._fn, self._args = target, args
        self.error = None

    def run(self):
        try:
            self._fn(*self._args)
        except BaseException as e:  # noqa: BLE001 - handed to the test by check()/join_all()
            self.error = e

    def check(self):
        """Raises (as an AssertionError naming the thread) if the thread ended with an exception."""
        if self.error is not None:
            raise AssertionError("thread %s failed: %r" % (self.name, self.error)) from self.error


def start_workers(target, args_list, name="worker"):
    """Starts one Worker per argument tuple; returns them."""
    ws = [Worker(target, a, name="%s-%d" % (name, k)) for k, a in enumerate(args_list)]
    for w in ws:
        w.start()
    return ws


def check_workers(workers):
    """Fails if any worker has died with an exception (call it inside wait conditions too)."""
    for w in workers:
        w.check()
    return True


def join_all(workers, deadline_s):
    """Joins every worker within deadline_s in all; fails if one is still running or if any
    ended with an exception."""
    end = time.monotonic() + deadline_s
    for w in workers:
        w.join(max(0.0, end - time.monotonic()))
    alive = [w.name for w in workers if w.is_alive()]
    assert not alive, "threads still running after %.0fs: %r" % (deadline_s, alive)
    check_workers(workers)


class ProtocolError(AssertionError):
    """Bytes from the server that are not a valid RESP reply. An AssertionError so that no
    wait retries it and no workload files it as an indeterminate outcome: a server sending
    garbage fails the test."""


class RespError(str):
    """An error reply, with its full text (code included), e.g. 'ERR syntax error'."""


class RawConn:
    """A raw socket speaking RESP, so tests see the exact reply types and error texts."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, *args):
        self.send(self.encode(*args))
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def read(self):
        """Reads one reply. Strings come back as bytes; errors as RespError; null as None.
        Raises ProtocolError on bytes that are not RESP."""
        try:
            return self._read()
        except ValueError as e:  # a length or number that does not parse
            raise ProtocolError("malformed RESP reply: %r" % (e,)) from e

    def _read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self._read() for _ in range(n)]
            return set(items) if t == b"~" and all(not isinstance(i, (list, dict)) for i in items) else items
        if t == b"%":
            n = int(rest)
            out = {}
            for _ in range(n):
                k = self._read()
                out[k] = self._read()
            return out
        if t == b"|":
            n = int(rest)
            for _ in range(2 * n):
                self._read()
            return self._read()
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        if t == b"(":
            return int(rest)
        if t in (b"!", b"="):
            return self._exact(int(rest))
        raise ProtocolError("unexpected RESP type byte in %r" % line[:80])

    def read_raw_line(self):
        """The next raw reply line including its type byte (e.g. b'-ERR ...')."""
        return self._line()

    def recv_until_closed(self, deadline_s=10.0, limit=None):
        """Reads until the server closes (returns all bytes). Fails if the deadline passes."""
        end = time.monotonic() + deadline_s
        data = self.buf
        self.buf = b""
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the connection within %.1fs" % deadline_s)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return data
            except socket.timeout:
                continue
            if not chunk:
                return data
            data += chunk
            if limit is not None and len(data) > limit:
                return data


# ---- server processes ----------------------------------------------------------------------


class Server:
    def __init__(self, argv, port, workdir, env=None):
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
        self.pid = self.proc.pid
        self._stopped = False

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, deadline_s=START_DEADLINE):
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            if not self.alive():
                raise AssertionError(
                    "server exited with %s before becoming ready: %s\n%s"
                    % (self.proc.returncode, " ".join(self.argv), self.log_tail())
                )
            try:
                with RawConn(self.port, timeout=2.0) as c:
                    reply = c.cmd("PING")
                    # With requirepass, an unauthenticated PING answers NOAUTH: still ready.
                    if reply == "PONG" or (isinstance(reply, RespError) and reply.startswith("NOAUTH")):
                        return
                    last = reply
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError("server not ready within %.1fs (last: %r)\n%s" % (deadline_s, last, self.log_tail()))

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, deadline_s=STOP_DEADLINE):
        try:
            return self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM):
        """Stops the server by PID; asserts a clean exit (code 0) within the deadline."""
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        try:
            if self.alive():
                self.send_signal(sig)
            rc = self.wait_exit()
            if rc is None:
                self.proc.kill()
                self.proc.wait(timeout=STOP_DEADLINE)
                raise AssertionError("server pid %d ignored %s for %.0fs; killed\n%s" % (self.pid, sig, STOP_DEADLINE, self.log_tail()))
            assert rc == 0, "server pid %d exited with %d after %s\n%s" % (self.pid, rc, sig, self.log_tail())
            return rc
        finally:
            self.log.close()

    def client(self, **kw):
        kw.setdefault("decode_responses", True)
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, timeout=10.0):
        return RawConn(self.port, timeout=timeout)


def start_redis_server(workdir, *extra):
    """A Debian redis-server on a free port (whatever HY_TARGET is), ready; extra: more of its
    options. The caller stops it (Server.stop)."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    s = Server([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", str(workdir)] + list(extra), port, str(workdir))
    s.wait_ready()
    return s


def server_argv(port, workdir, flags=None, config_file=None):
    """The command line for the current target, with options given as {name: value}."""
    flags = dict(flags or {})
    if IS_REDIS:
        argv = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", workdir]
        for k, v in flags.items():
            if k in _REDIS_FLAG_MAP:
                argv += _REDIS_FLAG_MAP[k](str(v))
            else:
                argv += ["--" + k, str(v)]
        return argv
    binpath = os.environ.get("HALYARD_BIN")
    if not binpath:
        raise pytest.UsageError("HALYARD_BIN is not set (or run with HY_TARGET=redis)")
    data_dir = os.path.join(workdir, "data")
    argv = [binpath, "--bind", "127.0.0.1", "--port", str(port), "--data-dir", data_dir]
    if config_file:
        argv += ["--config", config_file]
    for k, v in flags.items():
        argv += ["--" + k, str(v)]
    return argv


class ServerFactory:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.servers = []

    def start(self, flags=None, config_file=None, ready=True, port=None):
        """port: this client port (a server coming back where another one was), else a free
        one."""
        last_err = None
        fixed = port
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            port = fixed or free_port()
            workdir = str(self.tmp.mktemp("srv"))
            s = Server(server_argv(port, workdir, flags, config_file), port, workdir)
            self.servers.append(s)
            if not ready:
                return s
            try:
                s.wait_ready()
                return s
            except AssertionError as e:
                last_err = e
                if s.alive() or "in use" not in s.log_tail().lower():
                    raise
        raise last_err

    def stop_all(self):
        errors = []
        for s in self.servers:
            try:
                s.stop()
            except AssertionError as e:
                errors.append(str(e))
        self.servers = []
        return errors


@pytest.fixture
def servers(tmp_path_factory):
    """Starts servers with custom flags; stops each by PID at the end and checks exit code 0."""
    f = ServerFactory(tmp_path_factory)
    yield f
    errors = f.stop_all()
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per test module with default flags (tests start from an empty keyspace)."""
    f = ServerFactory(tmp_path_factory)
    s = f.start()
    yield s
    errors = f.stop_all()
    assert not errors, "\n".join(errors)


@pytest.fixture
def srv(shared_server):
    """The module's server, emptied, and checked to be still running after the test."""
    assert shared_server.alive(), "server died earlier:\n" + shared_server.log_tail()
    with shared_server.raw() as c:
        assert c.cmd("FLUSHALL") == "OK"
    yield shared_server
    assert shared_server.alive(), "server died during the test:\n" + shared_server.log_tail()


@pytest.fixture
def r(srv):
    """A python3-redis client (RESP2, decoded strings) on an emptied server."""
    c = srv.client()
    yield c
    c.close()


@pytest.fixture
def rb(srv):
    """A python3-redis client returning bytes."""
    c = srv.client(decode_responses=False)
    yield c
    c.close()


@pytest.fixture
def raw(srv):
    """A raw RESP connection to an emptied server."""
    c = srv.raw()
    yield c
    c.close()


def info_dict(conn, section=None):
    """INFO parsed into {field: value} from a RawConn."""
    text = conn.cmd("INFO", section) if section else conn.cmd("INFO")
    assert isinstance(text, bytes), "INFO replied %r" % (text,)
    out = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


@pytest.fixture
def clusters():
    """A list a test appends the clusters it starts to; each is stopped by PID at the end and
    every node must have exited cleanly."""
    made = []
    yield made
    errors = []
    for c in made:
        errors += c.stop_all()
    assert not errors, errors

"""A local halyard cluster for tests: N real processes on 127.0.0.1, each with its own data
directory, started and stopped by PID (client port P, peer port P + 10000)."""

import contextlib
import os
import random
import signal
import socket

from conftest import RawConn, RespError, Server, wait_for

SECRET = "test-secret"


def _bindable(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# Ports this process handed out lately: a node killed and started again takes its ports
# back, so no other node of the same test may be given them meanwhile.
_RECENT = []
_RECENT_MAX = 128


def free_port_pair():
    """A client port P whose peer port P + 10000 and HTTP port P + 1000 (the default) are free
    too. All stay below the kernel's ephemeral range (32768 and up by default), where outgoing
    connections could take them, and below 21079, where Redis's test suite (test_redis_suite.py)
    looks for ports of its own.

    Client ports come from the lower half of each 2,000-port block and HTTP ports (P + 1000)
    from the upper half, so that one node's HTTP port is never another's client port. Under
    pytest-xdist each worker takes its own slices of every lower half (with their upper
    halves), so two workers never pick the same port between one's check and its server's
    bind: a node's HTTP port in one worker's slice was once another worker's client port, and
    a restarted node found it taken (CI, test_moves.py target-replaced)."""
    lo, _hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    first, last = 12000, min(20000, lo - 10001)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
    slices = next((m for m in (1, 2, 4, 5, 8, 10) if m >= workers), None)
    if slices is None:
        raise RuntimeError("free_port_pair: at most 10 pytest-xdist workers")
    width = 1000 // slices
    mine = [p for p in range(first, last)
            if (p - first) % 2000 < 1000 and (p - first) % 1000 // width == worker]
    for _ in range(200):
        p = random.choice(mine)
        if p in _RECENT or any(17379 <= q <= 17381 for q in (p, p + 1000)):  # `make run`'s
            continue  # peer ports (test_run_script.py starts it)
        if _bindable(p) and _bindable(p + 10000) and _bindable(p + 1000):
            _RECENT.append(p)
            del _RECENT[:-_RECENT_MAX]
            return p
    raise RuntimeError("no free port pair")


def info(port, section="replication"):
    with RawConn(port, timeout=2.0) as c:
        text = c.cmd("INFO", section)
    out = {}
    for line in text.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


@contextlib.contextmanager
def with_follower(tmp_path_factory, n=3, extra=None):
    """A started n-node cluster and the index of a member that does not lead but knows which
    one does (its INFO names the leader); stopped by PID on the way out. `extra`: more
    --name value flags for every node, as Cluster's."""
    c = Cluster(tmp_path_factory, n, extra)
    c.start_all()
    try:
        fi = (c.leader(30) + 1) % n
        wait_for(lambda: info(c.ports[fi])["raft_leader"] != "", 30, "the follower to know its leader")
        yield c, fi
    finally:
        errors = c.stop_all()
        assert not errors, errors


class Cluster:
    def __init__(self, tmp_path_factory, n=3, extra=None):
        self.bin = os.environ["HALYARD_BIN"]
        self.dir = str(tmp_path_factory.mktemp("cluster"))
        self.ports = []
        while len(self.ports) < n:  # distinct: two random picks may coincide
            p = free_port_pair()
            # distinct, and no node's client, HTTP or peer port is another's
            taken = {q + d for q in self.ports for d in (0, 1000, 10000, -1000, -10000, 9000, -9000)}
            if p not in taken:
                self.ports.append(p)
        self.names = ["n%d" % (i + 1) for i in range(n)]
        self.bootstrap = ",".join("%s@127.0.0.1:%d" % (nm, p + 10000) for nm, p in zip(self.names, self.ports))
        self.extra = extra or {}
        self.nodes = [None] * n

    def http_port(self, i):
        """Node i's HTTP port: the default, client port + 1000."""
        return self.ports[i] + 1000

    def bootstrap_for(self, i):
        """Node i's --bootstrap list. Every node gets the same one here; a subclass may point
        the entries for other nodes elsewhere (a node listens on its own entry's port, and
        all nodes must agree on the names)."""
        return self.bootstrap

    def argv(self, i):
        a = [self.bin, "--node-id", self.names[i], "--bind", "127.0.0.1", "--port", str(self.ports[i]),
             "--peer-port", str(self.ports[i] + 10000), "--data-dir", os.path.join(self.dir, self.names[i]),
             "--bootstrap", self.bootstrap_for(i), "--cluster-secret", SECRET]
        for k, v in self.extra.items():
            a += ["--" + k, str(v)]
        return a

    def start(self, i):
        workdir = os.path.join(self.dir, "w%d" % i)
        os.makedirs(workdir, exist_ok=True)
        s = Server(self.argv(i), self.ports[i], workdir)
        s.log_path_keep = s.log_path
        self.nodes[i] = s
        s.wait_ready()
        return s

    def start_all(self):
        for i in range(len(self.nodes)):
            workdir = os.path.join(self.dir, "w%d" % i)
            os.makedirs(workdir, exist_ok=True)
            self.nodes[i] = Server(self.argv(i), self.ports[i], workdir)
        try:
            for s in self.nodes:
                s.wait_ready()
        except BaseException:
            # A failed start must not leave processes behind: the fixture's teardown never runs.
            for s in self.nodes:
                if s is not None and s.alive():
                    s.send_signal(signal.SIGKILL)
                    s.wait_exit()
            raise

    def role(self, i):
        """(raft_role, raft_term) of node i, or (None, None) when it does not answer (a term
        of None makes any comparison with it raise rather than pass: a node that did not
        answer proves nothing about terms)."""
        try:
            r = info(self.ports[i])
            return r["raft_role"], int(r["raft_term"])
        except (OSError, KeyError, ValueError, AttributeError):
            return None, None

    def term(self, i):
        """Node i's current term; fails if it does not answer."""
        role, term = self.role(i)
        assert term is not None, "%s did not report its term" % self.names[i]
        return term

    def leader(self, deadline_s=10, exclude=()):
        """Index of the node that leads the highest term (waits for one)."""
        found = []

        def check():
            best = None
            for i, s in enumerate(self.nodes):
                if s is None or not s.alive() or i in exclude:
                    continue
                role, term = self.role(i)
                if role == "leader" and (best is None or term > best[1]):
                    best = (i, term)
            if best:
                found[:] = [best[0]]
            return bool(best)

        wait_for(check, deadline_s, "a leader to be elected")
        return found[0]

    def kill(self, i, sig=signal.SIGKILL):
        s = self.nodes[i]
        s.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            s.wait_exit()
            s._stopped = True

    def stop_all(self):
        errors = []
        for s in self.nodes:
            if s is None:
                continue
            try:
                if s.alive():
                    os.kill(s.pid, signal.SIGCONT)
                s.stop()
            except AssertionError as e:
                errors.append(str(e))
        return errors


def is_error(r, prefix):
    return isinstance(r, RespError) and r.startswith(prefix)


class ClusterSet:
    """The clusters one test starts (a fixture's factory), each stopped at the end with every
    node's exit checked."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.made = []

    def start(self, kind, n, flags):
        c = kind(self.tmp, n, flags)
        self.made.append(c)
        c.start_all()
        return c

    def stop_all(self):
        errors = []
        for c in self.made:
            errors += c.stop_all()
        assert not errors, "\n".join(errors)

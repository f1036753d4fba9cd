"""Resource limits and process behaviour: maxmemory eviction, maxclients, idle timeout, output
buffer limit, many concurrent connections, graceful shutdown and config validation."""

import os
import re
import select
import signal
import socket
import subprocess
import threading

import pytest
import redis

from conftest import RawConn, check_workers, free_port, info_dict, join_all, raise_nofile, start_workers, wait_for

OOM = "OOM command not allowed when used memory > 'maxmemory'."
VALUE_10K = "v" * 10240


def used_memory(c):
    return int(info_dict(c, "memory")["used_memory"])


def used_memory_dataset(c):
    return int(info_dict(c, "memory")["used_memory_dataset"])


def set_batch(c, keys, value=VALUE_10K, extra=()):
    """Pipelines SETs of `keys`; returns the replies (in order)."""
    c.send(b"".join(c.encode("SET", k, value, *extra) for k in keys))
    return [c.read() for _ in keys]


# ---- maxmemory ---------------------------------------------------------------------------


def test_allkeys_lru_evicts_and_stays_bounded(servers):
    """Under allkeys-lru, writing 10x maxmemory succeeds, memory stays bounded and keys are evicted."""
    maxmem = 4 * 1024 * 1024
    s = servers.start({"maxmemory": maxmem, "maxmemory-policy": "allkeys-lru"})
    with s.raw() as c:
        total = 4000  # 4000 x 10 KiB = 40 MiB
        peak = peak_dataset = 0
        for start in range(0, total, 50):
            replies = set_batch(c, ["lru:%d" % i for i in range(start, start + 50)])
            assert replies == ["OK"] * 50, [r for r in replies if r != "OK"][:3]
            peak = max(peak, used_memory(c))
            peak_dataset = max(peak_dataset, used_memory_dataset(c))
        n = c.cmd("DBSIZE")
        assert 0 < n < total, n
        # maxmemory bounds the dataset, in Redis and in halyard alike. The whole process holds
        # more: Redis its buffers; halyard also its Raft log since the last snapshot (half the
        # dataset, at least 1 MiB), the snapshot Raft keeps for followers and the one on its
        # way to disk, and writes in flight to the disk (held by the log, the io batch and
        # the WAL thread: 10 KiB each here). Peaks of 25 MB were seen; it must stay bounded,
        # well under the 40 MiB written (which a leak of every write would exceed).
        assert peak_dataset <= maxmem * 3 // 2, "dataset peaked at %d with maxmemory %d" % (
            peak_dataset, maxmem)
        assert peak <= maxmem * 4 + 12 * 1024 * 1024, "used_memory peaked at %d with maxmemory %d" % (
            peak, maxmem)
        # What survives is intact. (Any command may evict more, so counts are not compared.)
        keys = c.cmd("KEYS", "lru:*")
        assert 0 < len(keys) < total
        vals = c.cmd("MGET", *keys[:100])
        assert all(v in (None, VALUE_10K.encode()) for v in vals), "corrupt value after eviction"
        assert any(v is not None for v in vals)
        assert int(info_dict(c, "stats")["evicted_keys"]) >= total - n


def test_noeviction_returns_oom(servers):
    """Under noeviction, writes beyond maxmemory get Redis's exact -OOM error; reads and DEL still work."""
    s = servers.start({"maxmemory": 2 * 1024 * 1024, "maxmemory-policy": "noeviction"})
    with s.raw() as c:
        err = None
        written = 0
        for i in range(1000):  # 10 MiB at most: far beyond the limit
            reply = c.cmd("SET", "k:%d" % i, VALUE_10K)
            if reply != "OK":
                err = reply
                break
            written += 1
        assert err == OOM, "expected %r after writing past maxmemory, got %r after %d writes" % (OOM, err, written)
        assert written > 0
        assert c.cmd("GET", "k:0") == VALUE_10K.encode()
        assert c.cmd("DBSIZE") == written
        assert c.cmd("HSET", "h", "f", VALUE_10K) == OOM
        assert c.cmd("APPEND", "k:0", "x") == OOM
        # Deleting frees memory and makes writes possible again.
        assert c.cmd("DEL", *["k:%d" % i for i in range(written)]) == written
        assert c.cmd("SET", "again", "v") == "OK"
    cl = s.client()
    cl.set("fill", "x")
    with pytest.raises(redis.ResponseError) as e:
        for i in range(1000):
            cl.set("py:%d" % i, VALUE_10K)
    assert "OOM command not allowed" in str(e.value)


def test_volatile_lru_only_evicts_volatile_keys(servers):
    """Under volatile-lru, only keys with a TTL are evicted; once none are left writes get -OOM."""
    s = servers.start({"maxmemory": 4 * 1024 * 1024, "maxmemory-policy": "volatile-lru"})
    with s.raw() as c:
        persistent = ["p:%d" % i for i in range(100)]  # ~1 MiB that must survive
        assert set_batch(c, persistent) == ["OK"] * 100
        for start in range(0, 1000, 50):  # ~10 MiB of volatile keys
            replies = set_batch(c, ["v:%d" % i for i in range(start, start + 50)], extra=("EX", "3600"))
            assert replies == ["OK"] * 50, [r for r in replies if r != "OK"][:3]
        assert c.cmd("EXISTS", *persistent) == 100
        volatile_left = len(c.cmd("KEYS", "v:*"))
        assert volatile_left < 1000
        # Now only persistent writes: they evict the remaining volatile keys, then hit OOM.
        err = None
        for i in range(1000):
            reply = c.cmd("SET", "q:%d" % i, VALUE_10K)
            if reply != "OK":
                err = reply
                break
        assert err == OOM, err
        assert c.cmd("EXISTS", *persistent) == 100
        assert c.cmd("GET", "p:0") == VALUE_10K.encode()


def test_config_set_maxmemory_at_runtime(servers):
    """Lowering maxmemory with CONFIG SET under allkeys-lru evicts down to the new limit on the next writes."""
    s = servers.start()
    with s.raw() as c:
        for start in range(0, 600, 50):
            assert set_batch(c, ["r:%d" % i for i in range(start, start + 50)]) == ["OK"] * 50
        assert c.cmd("DBSIZE") == 600
        assert c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == "OK"
        assert c.cmd("CONFIG", "SET", "maxmemory", "3mb") == "OK"
        for i in range(20):
            assert c.cmd("SET", "new:%d" % i, VALUE_10K) == "OK"
        assert c.cmd("DBSIZE") < 600
        # maxmemory bounds the dataset; the process (halyard: plus its Raft log) stays bounded.
        assert used_memory_dataset(c) <= 3 * 1024 * 1024 * 3 // 2
        assert used_memory(c) <= 4 * 3 * 1024 * 1024 + 8 * 1024 * 1024


# ---- connections -------------------------------------------------------------------------


def test_maxclients(servers):
    """With maxclients 5, the 6th connection gets '-ERR max number of clients reached' and is closed."""
    s = servers.start({"maxclients": 5})
    first = s.raw()
    # The readiness probe's close is noticed asynchronously: wait until only we are counted.
    wait_for(lambda: info_dict(first, "clients")["connected_clients"] == "1", 10, "the probe connection to be released")
    conns = [first] + [s.raw() for _ in range(4)]
    try:
        for c in conns:
            assert c.cmd("PING") == "PONG"
        with s.raw() as extra:
            got = extra.recv_until_closed()
            assert got == b"-ERR max number of clients reached\r\n", got
        with pytest.raises(redis.ConnectionError):  # python3-redis sees the refusal as a connection error
            s.client().ping()
        for c in conns:  # the admitted clients are unaffected
            assert c.cmd("SET", "k", "v") == "OK"
        conns.pop().close()

        def new_client_admitted():
            with s.raw() as c:
                return c.cmd("PING") == "PONG"

        wait_for(new_client_admitted, 10, "a slot to free up after a client left")
    finally:
        for c in conns:
            c.close()


def test_idle_timeout_closes_idle_client(servers):
    """With timeout 1, an idle client is disconnected while a busy one stays connected."""
    s = servers.start({"timeout": 1})
    with s.raw() as idle, s.raw() as busy:
        assert idle.cmd("PING") == "PONG"
        closed = []

        def idle_closed():
            assert busy.cmd("PING") == "PONG"  # keeps the busy client active meanwhile
            r, _, _ = select.select([idle.sock], [], [], 0.1)
            if r:
                try:
                    data = idle.sock.recv(100)
                except ConnectionResetError:
                    data = b""
                assert data == b"", "unexpected data on idle connection: %r" % data
                closed.append(True)
            return closed

        wait_for(idle_closed, 15, "the idle client to be disconnected", interval=0)
        assert busy.cmd("GET", "nope") is None
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"1"]


def test_output_buffer_limit_disconnects_slow_reader(servers):
    """A client that pipelines large GETs without reading is disconnected; others keep being served."""
    limit = 1024 * 1024
    s = servers.start({"client-output-buffer-limit": limit})
    with s.raw() as admin:
        value = b"z" * (100 * 1024)
        assert admin.cmd("SET", "big", value) == "OK"
        base = int(info_dict(admin, "clients")["connected_clients"])
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(10)
        slow.connect(("127.0.0.1", s.port))
        try:
            n = 2000  # ~200 MB of replies, never read
            slow.sendall(b"".join(RawConn.encode("GET", "big") for _ in range(n)))
            wait_for(lambda: int(info_dict(admin, "clients")["connected_clients"]) == base, 20,
                     "the non-reading client to be disconnected")
            assert admin.cmd("PING") == "PONG"
            assert admin.cmd("GET", "big") == value
            # The slow client sees the connection end well before all replies arrived.
            conn = RawConn.__new__(RawConn)
            conn.sock, conn.buf = slow, b""
            got = conn.recv_until_closed(deadline_s=20, limit=n * len(value) // 2)
            assert len(got) < n * len(value) // 2, "slow client got %d bytes: it was not disconnected" % len(got)
        finally:
            slow.close()


def test_thousand_concurrent_connections(servers):
    """1,000 connections open at once each get PING/SET/GET answered correctly."""
    n = 1000
    soft = raise_nofile(4096)
    if soft < n + 100:
        pytest.skip("RLIMIT_NOFILE is %d (ulimit -n), need %d" % (soft, n + 100))
    s = servers.start()  # inherits the raised limit
    conns = []
    try:
        for _ in range(n):
            conns.append(RawConn(s.port, timeout=30))
        for i, c in enumerate(conns):
            c.send(c.encode("PING") + c.encode("SET", "c:%d" % i, "val%d" % i) + c.encode("GET", "c:%d" % i))
        for i, c in enumerate(conns):
            assert c.read() == "PONG", i
            assert c.read() == "OK", i
            assert c.read() == b"val%d" % i, i
        with s.raw() as admin:
            assert int(info_dict(admin, "clients")["connected_clients"]) >= n + 1
            assert admin.cmd("DBSIZE") == n
            for c in conns:
                c.close()
            conns = []
            wait_for(lambda: int(info_dict(admin, "clients")["connected_clients"]) == 1, 20,
                     "closed connections to be released")
    finally:
        for c in conns:
            c.close()


def test_proto_max_bulk_len(servers):
    """A bulk longer than proto-max-bulk-len is a protocol error; shorter values still work."""
    s = servers.start({"proto-max-bulk-len": 1024 * 1024})
    with s.raw() as ok:
        assert ok.cmd("SET", "small", "x" * 1000) == "OK"
        with s.raw() as c:
            c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (2 * 1024 * 1024))
            assert c.recv_until_closed() == b"-ERR Protocol error: invalid bulk length\r\n"
        assert ok.cmd("EXISTS", "k") == 0
        assert ok.cmd("STRLEN", "small") == 1000


def test_documented_flags_accepted(servers):
    """The server starts with every documented tuning flag and applies them."""
    s = servers.start({
        "log-level": "debug", "maxclients": 100, "timeout": 0, "maxmemory": "64mb",
        "maxmemory-policy": "allkeys-lru", "maxmemory-samples": 5, "proto-max-bulk-len": 8 * 1024 * 1024,
        "client-output-buffer-limit": 64 * 1024 * 1024, "hz": 10,
    })
    with s.raw() as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"67108864"]
        assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"]
        assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"100"]


# ---- shutdown ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_delivers_replies(servers, sig):
    """On SIGTERM/SIGINT the server exits 0 and replies to already-processed commands are delivered."""
    s = servers.start()
    with s.raw() as watcher, s.raw() as client:
        n = 500
        client.send(b"".join(client.encode("SET", "s:%d" % i, "v") for i in range(n)) + client.encode("INCR", "done"))
        wait_for(lambda: watcher.cmd("GET", "done") == b"1", 10, "the pipeline to be processed")
        watcher.close()
        s.send_signal(sig)
        got = client.recv_until_closed(deadline_s=15)
        assert got == b"+OK\r\n" * n + b":1\r\n", "got %d bytes: %r..." % (len(got), got[-40:])
    rc = s.wait_exit(15)
    assert rc == 0, "exit code %r after %s\n%s" % (rc, sig, s.log_tail())
    s.stop()  # records the clean stop (already exited)


@pytest.mark.halyard_only
def test_shutdown_flushes_large_pending_reply(servers):
    """On SIGTERM, a large reply not yet read by its client is still delivered in full before exit."""
    s = servers.start()
    size = 8 * 1024 * 1024
    with s.raw() as watcher, s.raw() as client:
        assert watcher.cmd("SET", "big", b"b" * size) == "OK"
        client.send(client.encode("GET", "big") + client.encode("INCR", "done"))
        wait_for(lambda: watcher.cmd("GET", "done") == b"1", 10, "the pipeline to be processed")
        watcher.close()
        s.send_signal(signal.SIGTERM)
        got = client.recv_until_closed(deadline_s=15)
        want = b"$%d\r\n" % size + b"b" * size + b"\r\n:1\r\n"
        assert got == want, "got %d of %d bytes" % (len(got), len(want))
    assert s.wait_exit(15) == 0
    s.stop()


def test_shutdown_refuses_new_connections_after_exit(servers):
    """After a graceful stop, the port no longer accepts connections."""
    s = servers.start()
    port = s.port
    s.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# ---- configuration validation (halyard only: Redis's config format differs) --------------


def run_halyard_expect_failure(tmp_path, config_text=None, extra=()):
    binpath = os.environ["HALYARD_BIN"]
    argv = [binpath, "--bind", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")]
    cfg = None
    if config_text is not None:
        cfg = tmp_path / "halyard-test.yaml"
        cfg.write_text(config_text)
        argv += ["--config", str(cfg)]
    argv += list(extra)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("halyard started (ran 15s) despite an invalid configuration: %s" % argv)
    assert p.returncode != 0, "halyard exited 0 with an invalid configuration"
    return cfg, p.stdout + p.stderr


def names_line(out, line):
    """True if the message gives the line number, as 'line N' or 'file:N:'."""
    return re.search(r"(line\s*:?\s*%d\b|:%d:)" % (line, line), out) is not None


@pytest.mark.halyard_only
def test_config_unknown_key_fails_with_location(tmp_path):
    """A YAML config with an unknown key fails at start, naming the file and the line."""
    cfg, out = run_halyard_expect_failure(tmp_path, "maxclients: 10\nno-such-setting: 1\n")
    assert str(cfg) in out or cfg.name in out, out
    assert names_line(out, 2), out
    assert "no-such-setting" in out, out


@pytest.mark.halyard_only
def test_config_bad_value_fails_with_location(tmp_path):
    """A YAML config with a bad value fails at start, naming the file, the line and the key."""
    cfg, out = run_halyard_expect_failure(tmp_path, "timeout: 0\n\nmaxclients: lots\n")
    assert cfg.name in out, out
    assert names_line(out, 3), out
    assert "maxclients" in out, out
    cfg, out = run_halyard_expect_failure(tmp_path, "maxmemory-policy: allkeys-random\n")
    assert cfg.name in out and names_line(out, 1) and "maxmemory-policy" in out, out


@pytest.mark.halyard_only
def test_config_broken_yaml_fails(tmp_path):
    """A syntactically broken YAML file fails at start naming the file and a line."""
    cfg, out = run_halyard_expect_failure(tmp_path, "maxclients: 10\nport: [1, 2\n")
    assert cfg.name in out and re.search(r"(line\s*:?\s*\d+|:\d+:)", out), out


@pytest.mark.halyard_only
def test_config_missing_file_and_bad_flags_fail(tmp_path):
    """A missing config file, an unknown flag and a bad flag value each fail at start with a message."""
    _, out = run_halyard_expect_failure(tmp_path, extra=("--config", str(tmp_path / "nope.yaml")))
    assert "nope.yaml" in out, out
    _, out = run_halyard_expect_failure(tmp_path, extra=("--no-such-flag", "1"))
    assert "no-such-flag" in out, out
    _, out = run_halyard_expect_failure(tmp_path, extra=("--maxclients", "-3"))
    assert "maxclients" in out, out


@pytest.mark.halyard_only
def test_config_file_values_applied(servers, tmp_path):
    """Settings from a YAML config file are applied (seen through CONFIG GET)."""
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("# a comment\nmaxclients: 77\nmaxmemory: 10mb\nmaxmemory-policy: volatile-lru\ntimeout: 300\n")
    s = servers.start(config_file=str(cfg))
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"77"]
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
        assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"volatile-lru"]
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"300"]


@pytest.mark.halyard_only
def test_flags_override_config_file(servers, tmp_path):
    """A command-line flag overrides the same key in the config file."""
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("maxclients: 77\n")
    s = servers.start({"maxclients": 55}, config_file=str(cfg))
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"55"]


@pytest.mark.halyard_only
def test_config_rewrite_keeps_the_file_and_writes_what_runs(servers, tmp_path):
    """CONFIG REWRITE, as Redis's: comments and untouched lines stay; a setting CONFIG SET or a
    flag changed gets its running value where the file had it (a list value's lines
    included), else on a line added at the end; a secret given by flag is not written; and
    a server started from the rewritten file runs with those values. Without a file: Redis's
    error."""
    cfg = tmp_path / "h.yaml"
    cfg.write_text("# my node\nmaxclients: 77   # clients\ntimeout: 300\n"
                   "alert-webhooks:\n  - http://127.0.0.1:9/a\n  - http://127.0.0.1:9/b\n"
                   "maxmemory: 10mb\n# the end\n")
    s = servers.start({"hz": 15, "requirepass": "s3cret", "alert-webhooks": "http://127.0.0.1:9/c"},
                      config_file=str(cfg))
    with s.raw() as c:
        c.cmd("AUTH", "s3cret")
        assert c.cmd("CONFIG", "SET", "maxmemory", "5mb", "maxmemory-policy", "allkeys-lru") == "OK"
        assert c.cmd("CONFIG", "REWRITE") == "OK"
    text = cfg.read_text()
    lines = text.splitlines()
    assert lines[0] == "# my node" and lines[1] == "maxclients: 77   # clients", text
    assert "timeout: 300" in lines and "# the end" in lines, text
    assert 'maxmemory: "5242880"' in lines and "maxmemory: 10mb" not in text, text
    assert 'alert-webhooks: "http://127.0.0.1:9/c"' in lines and "9/a" not in text, text
    assert 'maxmemory-policy: "allkeys-lru"' in lines and 'hz: "15"' in lines, text
    assert "s3cret" not in text and "requirepass" not in text, text
    s.stop()
    again = servers.start(config_file=str(cfg))
    with again.raw() as c:
        for name, value in (("maxmemory", b"5242880"), ("maxmemory-policy", b"allkeys-lru"),
                            ("hz", b"15"), ("maxclients", b"77"), ("timeout", b"300"),
                            ("alert-webhooks", b"http://127.0.0.1:9/c")):
            assert c.cmd("CONFIG", "GET", name) == [name.encode(), value]
    plain = servers.start()
    with plain.raw() as c:
        assert c.cmd("CONFIG", "REWRITE") == "ERR The server is running without a config file"




def test_allkeys_lru_with_hashes_stays_bounded(servers):
    """Under allkeys-lru, filling hashes far beyond maxmemory evicts whole hashes and stays bounded."""
    maxmem = 4 * 1024 * 1024
    s = servers.start({"maxmemory": maxmem, "maxmemory-policy": "allkeys-lru"})
    with s.raw() as c:
        peak = peak_dataset = 0
        for i in range(400):  # 400 hashes x 50 fields x 1 KiB = 20 MiB
            reply = c.cmd("HSET", "hh:%d" % i, *[x for j in range(50) for x in ("f%d" % j, "h" * 1024)])
            assert reply == 50, reply
            if i % 20 == 0:
                peak = max(peak, used_memory(c))
                peak_dataset = max(peak_dataset, used_memory_dataset(c))
        assert c.cmd("DBSIZE") < 400
        # As in test_allkeys_lru_evicts_and_stays_bounded: maxmemory bounds the dataset.
        assert peak_dataset <= maxmem * 3 // 2, "dataset peaked at %d with maxmemory %d" % (
            peak_dataset, maxmem)
        assert peak <= maxmem * 4 + 8 * 1024 * 1024, "used_memory peaked at %d with maxmemory %d" % (
            peak, maxmem)
        for k in c.cmd("KEYS", "hh:*")[:20]:
            assert c.cmd("HLEN", k) in (0, 50)  # a hash is evicted whole, never partly


def test_config_set_timeout_applies_to_existing_clients(servers):
    """Setting timeout at runtime disconnects clients that were already idle."""
    s = servers.start()
    with s.raw() as idle, s.raw() as admin:
        assert idle.cmd("PING") == "PONG"
        assert admin.cmd("CONFIG", "SET", "timeout", "1") == "OK"

        def idle_closed():
            assert admin.cmd("PING") == "PONG"
            r, _, _ = select.select([idle.sock], [], [], 0.1)
            if not r:
                return False
            try:
                return idle.sock.recv(100) == b""
            except ConnectionResetError:
                return True

        wait_for(idle_closed, 15, "the idle client to be disconnected", interval=0)


def test_config_set_maxclients_at_runtime(servers):
    """Lowering maxclients at runtime refuses new connections beyond the new limit."""
    s = servers.start()
    with s.raw() as admin:
        wait_for(lambda: info_dict(admin, "clients")["connected_clients"] == "1", 10, "the probe connection to be released")
        assert admin.cmd("CONFIG", "SET", "maxclients", "2") == "OK"
        with s.raw() as second:
            assert second.cmd("PING") == "PONG"
            with s.raw() as third:
                assert third.recv_until_closed() == b"-ERR max number of clients reached\r\n"
            assert second.cmd("PING") == "PONG"


def test_pipelined_auth(servers):
    """AUTH pipelined with the commands that need it is applied in order."""
    s = servers.start({"requirepass": "pw"})
    with s.raw() as c:
        c.send(c.encode("GET", "k") + c.encode("AUTH", "pw") + c.encode("SET", "k", "v") + c.encode("GET", "k"))
        assert c.read() == "NOAUTH Authentication required."
        assert c.read() == "OK"
        assert c.read() == "OK"
        assert c.read() == b"v"


def test_shutdown_under_load(servers):
    """SIGTERM while 20 clients hammer the server still ends in exit 0 within the deadline."""
    s = servers.start()
    stop = threading.Event()
    started = []

    def hammer(i):
        try:
            with s.raw(timeout=5) as c:
                started.append(i)
                n = 0
                while not stop.is_set():
                    c.send(c.encode("SET", "l:%d" % i, n) * 20)
                    for _ in range(20):
                        c.read()
                    n += 1
        except OSError:  # connections end when the server stops (anything else fails the test)
            pass

    ts = start_workers(hammer, [(i,) for i in range(20)], name="hammer")
    wait_for(lambda: check_workers(ts) and len(started) == 20, 10, "all load clients to connect")
    s.send_signal(signal.SIGTERM)
    rc = s.wait_exit(15)
    stop.set()
    join_all(ts, 10)
    assert rc == 0, "exit code %r under load\n%s" % (rc, s.log_tail())
    s.stop()


def test_shutdown_not_blocked_by_partial_frame_or_non_reader(servers):
    """A half-sent frame and a client that never reads its 8 MiB reply do not keep SIGTERM from exiting 0."""
    s = servers.start()
    with s.raw() as admin, s.raw() as partial:
        assert admin.cmd("SET", "big", b"q" * (8 * 1024 * 1024)) == "OK"
        partial.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
        stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", s.port))
        try:
            stuck.sendall(RawConn.encode("GET", "big") + RawConn.encode("INCR", "done"))
            wait_for(lambda: admin.cmd("GET", "done") == b"1", 10, "the non-reader's commands to be processed")
            s.send_signal(signal.SIGTERM)
            rc = s.wait_exit(15)
            assert rc == 0, "exit code %r\n%s" % (rc, s.log_tail())
        finally:
            stuck.close()
    s.stop()

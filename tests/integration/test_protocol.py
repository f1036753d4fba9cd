"""RESP protocol handling: pipelining, RESP3, inline commands, and malformed input.

Malformed input must be answered with an error (or a close) on that connection only, while
other clients keep being served: the Bystander thread keeps doing SET/GET round trips during
every malformed-input test and must see no failure.
"""

import random
import select
import socket
import threading

import pytest

from conftest import RawConn, join_all, start_workers, wait_for


class Bystander:
    """Another client doing SET/GET round trips in a thread; every reply must be correct."""

    def __init__(self, port):
        self.conn = RawConn(port, timeout=10)
        self.stop_ev = threading.Event()
        self.errors = []
        self.rounds = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        try:
            while not self.stop_ev.is_set():
                i += 1
                v = "v%d" % i
                if self.conn.cmd("SET", "bystander", v) != "OK":
                    self.errors.append("SET failed")
                got = self.conn.cmd("GET", "bystander")
                if got != v.encode():
                    self.errors.append("GET returned %r, want %r" % (got, v))
                self.rounds += 1
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))

    def wait_rounds(self, n, deadline=10):
        start = self.rounds
        wait_for(lambda: self.rounds >= start + n or self.errors, deadline, "bystander to make progress")
        assert not self.errors, self.errors

    def finish(self):
        """Stops the thread; asserts it was served throughout and still is."""
        self.wait_rounds(3)
        self.stop_ev.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "bystander thread hung (server stopped answering it)"
        assert not self.errors, self.errors
        assert self.conn.cmd("PING") == "PONG"
        self.conn.close()


@pytest.fixture
def bystander(srv):
    b = Bystander(srv.port)
    yield b
    b.finish()


def no_data_pending(conn):
    """True if nothing is readable on the socket right now (non-blocking check)."""
    if conn.buf:
        return False
    r, _, _ = select.select([conn.sock], [], [], 0)
    return not r


# ---- pipelining ------------------------------------------------------------------------


def test_pipeline_10000_in_one_write(raw):
    """10,000 commands sent in one write are all answered, in order."""
    n = 10000
    blob = b"".join(RawConn.encode("INCR", "counter") for _ in range(n))
    sender = start_workers(raw.send, [(blob,)], name="sender")
    for i in range(1, n + 1):
        got = raw.read()
        assert got == i, "reply %d was %r" % (i, got)
    join_all(sender, 30)
    assert raw.cmd("GET", "counter") == str(n).encode()


def test_pipeline_mixed_commands_in_order(raw):
    """A pipeline of mixed SET/GET/INCR/errors gets every reply in request order."""
    cmds, want = [], []
    for i in range(2000):
        cmds.append(RawConn.encode("SET", "k%d" % i, "v%d" % i)); want.append("OK")
        cmds.append(RawConn.encode("GET", "k%d" % i)); want.append(b"v%d" % i)
        cmds.append(RawConn.encode("GET", "k%d" % i, "extra")); want.append("ERR wrong number of arguments for 'get' command")
        cmds.append(RawConn.encode("EXISTS", "k%d" % i, "nope")); want.append(1)
    t = start_workers(raw.send, [(b"".join(cmds),)], name="sender")
    for i, w in enumerate(want):
        got = raw.read()
        assert got == w, "reply %d: %r != %r" % (i, got, w)
    join_all(t, 30)


def test_pipeline_inline_and_multibulk_mixed(raw):
    """Inline and multibulk requests can be mixed in one write."""
    raw.send(b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\nGET a\r\nEXISTS a\n")
    assert raw.read() == "PONG"
    assert raw.read() == "OK"
    assert raw.read() == b"b"
    assert raw.read() == 1


def test_inline_quoting(raw):
    """Inline commands honour double quotes and escapes like redis-cli/Redis."""
    raw.send(b'SET k "hello world"\r\n')
    assert raw.read() == "OK"
    assert raw.cmd("GET", "k") == b"hello world"
    raw.send(b'SET k2 "a\\x41\\n"\r\n')
    assert raw.read() == "OK"
    assert raw.cmd("GET", "k2") == b"aA\n"
    raw.send(b"SET k3 'single quoted'\r\n")
    assert raw.read() == "OK"
    assert raw.cmd("GET", "k3") == b"single quoted"


def test_empty_inline_lines_ignored(raw):
    """Blank lines between commands produce no reply."""
    raw.send(b"\r\n\r\n\nPING\r\n")
    assert raw.read_raw_line() == b"+PONG"
    assert raw.cmd("ECHO", "x") == b"x"


# ---- RESP3 -----------------------------------------------------------------------------


def read_map_header(conn):
    line = conn.read_raw_line()
    assert line[:1] == b"%", "expected a RESP3 map, got %r" % line
    return int(line[1:])


def test_hello3_returns_map(raw):
    """HELLO 3 answers a RESP3 map with server, version, proto 3, id, mode, role and modules."""
    raw.send(RawConn.encode("HELLO", "3"))
    n = read_map_header(raw)
    m = {}
    for _ in range(n):
        k = raw.read()
        m[k] = raw.read()
    for k in (b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"):
        assert k in m, (k, m)
    assert m[b"proto"] == 3
    assert m[b"id"] == raw.cmd("CLIENT", "ID")
    assert m[b"modules"] == []


def test_resp3_types(raw):
    """In RESP3, HGETALL is a % map, a missing value is _ and CONFIG GET is a map."""
    raw.cmd("HELLO", "3")
    raw.cmd("HSET", "h", "a", "1", "b", "2")
    raw.send(RawConn.encode("HGETALL", "h"))
    assert raw.read_raw_line() == b"%2"
    got = {}
    for _ in range(2):
        k = raw.read()
        got[k] = raw.read()
    assert got == {b"a": b"1", b"b": b"2"}
    raw.send(RawConn.encode("GET", "missing"))
    assert raw.read_raw_line() == b"_"
    raw.send(RawConn.encode("HGET", "h", "missing"))
    assert raw.read_raw_line() == b"_"
    raw.send(RawConn.encode("MGET", "missing", "h"))
    assert raw.read_raw_line() == b"*2"
    assert raw.read_raw_line() == b"_"
    assert raw.read_raw_line() == b"_"
    raw.send(RawConn.encode("HGETALL", "missing"))
    assert raw.read_raw_line() == b"%0"
    raw.send(RawConn.encode("CONFIG", "GET", "maxmemory"))
    assert raw.read_raw_line() == b"%1"
    assert raw.read() == b"maxmemory"
    assert raw.read() == b"0"
    raw.send(RawConn.encode("TTL", "h"))
    assert raw.read_raw_line() == b":-1"


def test_hello_switches_back_to_resp2(raw):
    """HELLO 2 after HELLO 3 returns to RESP2 encodings (nil bulk, flat arrays)."""
    raw.cmd("HELLO", "3")
    raw.send(RawConn.encode("GET", "missing"))
    assert raw.read_raw_line() == b"_"
    reply = raw.cmd("HELLO", "2")
    assert isinstance(reply, list)
    raw.send(RawConn.encode("GET", "missing"))
    assert raw.read_raw_line() == b"$-1"
    raw.cmd("HSET", "h", "a", "1")
    raw.send(RawConn.encode("HGETALL", "h"))
    assert raw.read_raw_line() == b"*2"


# ---- truncated and split frames --------------------------------------------------------


def test_frame_split_byte_by_byte(raw, bystander):
    """A command delivered one byte per write is parsed correctly."""
    data = RawConn.encode("SET", "split", "value-with-\r\n-inside")
    for b in data:
        raw.send(bytes([b]))
    assert raw.read() == "OK"
    assert raw.cmd("GET", "split") == b"value-with-\r\n-inside"


def test_truncated_frame_waits_for_rest(srv, raw, bystander):
    """A truncated frame gets no reply and the connection stays open until the rest arrives."""
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel")
    # Another client's round trips prove the server had time to look at the partial frame.
    with srv.raw() as other:
        for _ in range(20):
            assert other.cmd("PING") == "PONG"
    bystander.wait_rounds(5)
    assert no_data_pending(raw), "server replied to an incomplete frame: %r" % raw.sock.recv(100)
    raw.send(b"lo\r\n")
    assert raw.read() == "OK"
    assert raw.cmd("GET", "k") == b"hello"


def test_large_bulk_in_chunks_while_others_served(srv, raw):
    """A 4 MiB bulk arriving in slow chunks does not block other clients."""
    value = random.Random(7).randbytes(4 * 1024 * 1024)
    frame = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % len(value) + value + b"\r\n"
    with srv.raw() as other:
        step = 256 * 1024
        for off in range(0, len(frame), step):
            raw.send(frame[off : off + step])
            assert other.cmd("PING") == "PONG"
        assert raw.read() == "OK"
        assert other.cmd("STRLEN", "big") == len(value)
    assert raw.cmd("GET", "big") == value


def test_many_clients_with_partial_frames(srv, bystander):
    """50 clients each holding half a command do not stall the server; completing them answers all."""
    conns = [srv.raw() for _ in range(50)]
    try:
        frames = [RawConn.encode("SET", "p%d" % i, "x" * 1000) for i in range(50)]
        for c, f in zip(conns, frames):
            c.send(f[: len(f) // 2])
        bystander.wait_rounds(10)
        for c in conns:
            assert no_data_pending(c)
        for c, f in zip(conns, frames):
            c.send(f[len(f) // 2 :])
        for c in conns:
            assert c.read() == "OK"
        with srv.raw() as check:
            assert check.cmd("EXISTS", *["p%d" % i for i in range(50)]) == 50
    finally:
        for c in conns:
            c.close()


# ---- malformed input -------------------------------------------------------------------


def expect_protocol_error(srv, data, message):
    """Sends data on a fresh connection; expects exactly -ERR Protocol error: <message> then a close."""
    with srv.raw() as c:
        c.send(data)
        got = c.recv_until_closed()
        assert got == b"-ERR Protocol error: " + message + b"\r\n", got[:300]


def test_negative_bulk_length(srv, bystander):
    """$-5 inside a multibulk is 'invalid bulk length' and closes only that connection."""
    expect_protocol_error(srv, b"*2\r\n$-5\r\n", b"invalid bulk length")


def test_huge_bulk_length(srv, bystander):
    """A bulk length above proto-max-bulk-len is 'invalid bulk length' and closes the connection."""
    expect_protocol_error(srv, b"*2\r\n$99999999999\r\n", b"invalid bulk length")
    expect_protocol_error(srv, b"*1\r\n$9999999999999999999999\r\n", b"invalid bulk length")


def test_non_numeric_lengths(srv, bystander):
    """Non-numeric multibulk and bulk lengths are protocol errors."""
    expect_protocol_error(srv, b"*abc\r\n", b"invalid multibulk length")
    expect_protocol_error(srv, b"*1\r\n$abc\r\n", b"invalid bulk length")


def test_huge_multibulk_count(srv, bystander):
    """A multibulk count beyond any limit is 'invalid multibulk length' and closes the connection."""
    expect_protocol_error(srv, b"*99999999999\r\n", b"invalid multibulk length")


def test_missing_dollar(srv, bystander):
    """A multibulk element that does not start with $ is answered with Redis's exact error."""
    expect_protocol_error(srv, b"*1\r\nx3\r\n", b"expected '$', got 'x'")


def test_unbalanced_quotes_inline(srv, bystander):
    """An inline command with unbalanced quotes is a protocol error."""
    expect_protocol_error(srv, b'SET k "abc\r\n', b"unbalanced quotes in request")


def test_too_big_inline(srv, bystander):
    """An inline request longer than 64 KiB without a newline is rejected and the connection closed."""
    expect_protocol_error(srv, b"x" * 70000, b"too big inline request")


def test_negative_multibulk_count_is_harmless(srv, bystander):
    """*-5 (and *0) do not crash or wedge the connection: they are skipped or a protocol error."""
    for prefix in (b"*-5\r\n", b"*0\r\n"):
        with srv.raw() as c:
            c.send(prefix + b"*1\r\n$4\r\nPING\r\n")
            line = c.read_raw_line()
            assert line == b"+PONG" or line.startswith(b"-ERR Protocol error"), line


def test_protocol_error_after_valid_commands(srv, bystander):
    """Replies to valid commands before a protocol error are delivered, then the error, then the close."""
    with srv.raw() as c:
        c.send(RawConn.encode("SET", "pe", "1") + RawConn.encode("GET", "pe") + b"*1\r\n$-5\r\n")
        got = c.recv_until_closed()
        assert got == b"+OK\r\n$1\r\n1\r\n-ERR Protocol error: invalid bulk length\r\n", got


def test_random_bytes(srv, bystander):
    """Random garbage only ever earns error replies (or a close), and never disturbs other clients."""
    rng = random.Random(20240601)
    for round_ in range(30):
        size = rng.choice([1, 7, 100, 1000, 4096, 20000])
        data = rng.randbytes(size)
        if round_ % 3 == 1:
            data = b"*" + data  # look like a multibulk
        elif round_ % 3 == 2:
            data = b"*2\r\n$3\r\nGET\r\n$" + data
        with srv.raw() as c:
            try:
                c.send(data)
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # EPIPE/ECONNRESET/ENOTCONN: the server already closed us after a protocol error
            got = c.recv_until_closed(deadline_s=15)
        lines = got.split(b"\r\n")
        for line in lines[:-1]:
            assert line.startswith(b"-"), "round %d: non-error reply %r to random bytes" % (round_, line[:100])
        bystander.wait_rounds(1)
    with srv.raw() as c:
        assert c.cmd("GET", "bystander") is not None


def test_garbage_on_many_connections_while_pipelining(srv):
    """A client pipelining valid commands is fully served while 20 others send garbage."""
    with srv.raw() as good:
        n = 3000
        blob = b"".join(RawConn.encode("INCR", "ctr") for _ in range(n))
        t = start_workers(good.send, [(blob,)], name="sender")
        rng = random.Random(99)
        for _ in range(20):
            with srv.raw() as bad:
                try:
                    bad.send(b"*1\r\n$-7\r\n" + rng.randbytes(500))
                except OSError:
                    pass  # already closed by the server
                assert bad.recv_until_closed().startswith(b"-ERR Protocol error")
        for i in range(1, n + 1):
            assert good.read() == i
        join_all(t, 30)


def test_redis_cli_resp3(srv):
    """redis-cli -3 (HELLO 3) renders a hash as a map and a missing key as nil."""
    import subprocess

    def cli(*args):
        p = subprocess.run(["redis-cli", "-3", "-p", str(srv.port), "--no-raw", *args],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p
        return p.stdout

    assert cli("HSET", "h", "a", "1", "b", "2").strip() == "(integer) 2"
    lines = cli("HGETALL", "h").splitlines()  # e.g. '1# "a" => "1"'; field order is unspecified
    assert [l.split("# ", 1)[0] for l in lines] == ["1", "2"], lines
    assert sorted(l.split("# ", 1)[1] for l in lines) == ['"a" => "1"', '"b" => "2"'], lines
    assert cli("GET", "nope").strip() == "(nil)"


def test_redis_py_pipeline(r):
    """A python3-redis pipeline (no MULTI) of 1,000 commands returns every reply in order."""
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set("pp:%d" % i, i)
        p.incr("pp:%d" % i)
    out = p.execute()
    assert out == [x for i in range(500) for x in (True, i + 1)]
    assert r.get("pp:499") == "500"

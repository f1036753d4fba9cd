"""Exactly-once writes with client sessions (HY.SESSION / HY.REQ) on real processes: retries
replay the first reply, across a restart and across a leader failover."""

import signal

import pytest

from cluster import Cluster
from conftest import RawConn, RespError, Server

pytestmark = pytest.mark.halyard_only


def test_retry_replays_and_applies_once(servers):
    """A retried HY.REQ returns the original reply and the write is applied once."""
    s = servers.start()
    with s.raw() as c:
        sid = c.cmd("HY.SESSION", "OPEN", "60000")
        assert isinstance(sid, int) and sid > 0
        assert c.cmd("HY.REQ", sid, 1, "INCRBY", "n", "10") == 10
        assert c.cmd("HY.REQ", sid, 1, "INCRBY", "n", "10") == 10
        assert c.cmd("HY.REQ", sid, 2, "INCRBY", "n", "10") == 20
        assert c.cmd("GET", "n") == b"20"
        assert c.cmd("HY.REQ", sid, 3, "SET", "s", "v", "GET") is None
        assert c.cmd("HY.REQ", sid, 3, "SET", "s", "v", "GET") is None  # the first reply again
        r = c.cmd("HY.REQ", sid + 1000, 1, "INCR", "n")
        assert isinstance(r, RespError) and "unknown or expired session" in r
        r = c.cmd("HY.REQ", sid, 4, "GET", "n")
        assert isinstance(r, RespError) and "wraps a data write" in r
        r = c.cmd("HY.REQ", sid, 4, "SET", "only-key")
        assert r == "ERR wrong number of arguments for 'set' command"
        assert c.cmd("GET", "n") == b"20"


def test_sessions_survive_kill9_restart(servers):
    """Sessions are replicated state: after kill -9 and recovery a retry still replays."""
    s = servers.start()
    with s.raw() as c:
        sid = c.cmd("HY.SESSION", "OPEN")
        assert c.cmd("HY.REQ", sid, 1, "HINCRBY", "h", "f", "7") == 7
    s.send_signal(signal.SIGKILL)
    s.wait_exit()
    servers.servers.remove(s)
    s2 = Server(s.argv, s.port, s.workdir)
    servers.servers.append(s2)
    s2.wait_ready()
    with s2.raw() as c:
        assert c.cmd("HY.REQ", sid, 1, "HINCRBY", "h", "f", "7") == 7
        assert c.cmd("HGET", "h", "f") == b"7"


def test_retry_after_failover_applies_once(tmp_path_factory):
    """A write acknowledged just before the leader dies is not applied twice by its retry."""
    cl = Cluster(tmp_path_factory, 3)
    cl.start_all()
    try:
        li = cl.leader()
        with RawConn(cl.ports[li]) as c:
            sid = c.cmd("HY.SESSION", "OPEN", "60000")
            for seq in range(1, 21):
                assert c.cmd("HY.REQ", sid, seq, "INCR", "counter") == seq
        cl.kill(li)
        ni = cl.leader(exclude=(li,))
        other = [i for i in range(3) if i not in (li, ni)][0]
        # The client retries its last requests through any surviving member (proxied).
        with RawConn(cl.ports[other]) as c:
            for seq in range(15, 21):
                assert c.cmd("HY.REQ", sid, seq, "INCR", "counter") == seq
            assert c.cmd("HY.REQ", sid, 21, "INCR", "counter") == 21
            assert c.cmd("GET", "counter") == b"21"
    finally:
        errors = cl.stop_all()
        assert not errors, errors

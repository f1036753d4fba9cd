"""Streams (issue 13): replies and exact error texts as Redis 7.0 gives them, with redis-py,
raw RESP and redis-cli; blocking XREAD/XREADGROUP; and streams in a 3-node cluster with 4
partitions, written and read through a follower of the key's partition (proxy mode) and
refused with -MOVED (moved mode), every replica ending with the same entries and the same
pending entries."""

import subprocess

import pytest

from cluster import Cluster
from conftest import RawConn, wait_for

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BAD_ID = "ERR Invalid stream ID specified as stream command argument"


def test_xadd_ids_ranges_and_errors(raw):
    """Explicit, ms-* and auto IDs; XRANGE/XREVRANGE with COUNT and exclusive bounds; XLEN,
    XDEL, XTRIM; the errors as Redis words them."""
    assert raw.cmd("XADD", "s", "1-1", "a", "1") == b"1-1"
    assert raw.cmd("XADD", "s", "1-*", "b", "2") == b"1-2"
    assert raw.cmd("XADD", "s", "5", "c", "3") == b"5-0"
    auto = raw.cmd("XADD", "s", "*", "d", "4")
    ms, seq = auto.split(b"-")
    assert int(ms) > 5 and seq == b"0"
    assert raw.cmd("XADD", "s", "1-1", "x", "y") == (
        "ERR The ID specified in XADD is equal or smaller than the target stream top item")
    assert raw.cmd("XADD", "s", "0-0", "x", "y") == "ERR The ID specified in XADD must be greater than 0-0"
    assert raw.cmd("XADD", "s", "*", "x") == "ERR wrong number of arguments for 'xadd' command"
    assert raw.cmd("XADD", "s", "1-x", "x", "y") == BAD_ID
    assert raw.cmd("XADD", "none", "NOMKSTREAM", "*", "x", "y") is None
    assert raw.cmd("EXISTS", "none") == 0
    assert raw.cmd("XLEN", "s") == 4
    assert raw.cmd("XRANGE", "s", "-", "+", "COUNT", 2) == [
        [b"1-1", [b"a", b"1"]], [b"1-2", [b"b", b"2"]]]
    assert raw.cmd("XRANGE", "s", "(1-1", "5") == [[b"1-2", [b"b", b"2"]], [b"5-0", [b"c", b"3"]]]
    assert raw.cmd("XREVRANGE", "s", "+", "-", "COUNT", 1) == [[auto, [b"d", b"4"]]]
    assert raw.cmd("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+") == (
        "ERR invalid start ID for the interval")
    assert raw.cmd("XRANGE", "s", "x", "+") == BAD_ID
    assert raw.cmd("XDEL", "s", "1-2", "9-9") == 1
    assert raw.cmd("XTRIM", "s", "MAXLEN", "=", 2) == 1
    assert raw.cmd("XTRIM", "s", "MAXLEN", 1, "LIMIT", 1) == (
        "ERR syntax error, LIMIT cannot be used without the special ~ option")
    assert raw.cmd("XRANGE", "s", "-", "+") == [[b"5-0", [b"c", b"3"]], [auto, [b"d", b"4"]]]
    assert raw.cmd("TYPE", "s") == "stream"
    assert raw.cmd("OBJECT", "ENCODING", "s") == b"stream"
    raw.cmd("SET", "str", "v")
    assert raw.cmd("XADD", "str", "*", "a", "1") == WRONGTYPE
    assert raw.cmd("XRANGE", "str", "-", "+") == WRONGTYPE
    assert raw.cmd("XLEN", "nokey") == 0
    assert raw.cmd("XRANGE", "nokey", "-", "+") == []


def test_keys_commands_and_transactions_on_streams(raw):
    """DEL, EXPIRE, RENAME, COPY and SCAN TYPE work on streams; MULTI/EXEC holds stream
    writes and reads, applied as one entry."""
    raw.cmd("XADD", "s", "1-0", "f", "v")
    raw.cmd("XGROUP", "CREATE", "s", "g", "0")
    assert raw.cmd("COPY", "s", "c") == 1
    assert raw.cmd("XADD", "c", "2-0", "f", "w") == b"2-0"
    assert raw.cmd("XLEN", "s") == 1
    assert raw.cmd("XINFO", "GROUPS", "c")[0][1] == b"g"
    assert raw.cmd("RENAME", "c", "d") == "OK"
    assert raw.cmd("XLEN", "d") == 2
    assert sorted(raw.cmd("SCAN", 0, "TYPE", "stream", "COUNT", 100)[1]) == [b"d", b"s"]
    assert raw.cmd("EXPIRE", "d", 100) == 1
    assert 0 < raw.cmd("TTL", "d") <= 100
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("XADD", "s", "3-0", "a", "b") == "QUEUED"
    assert raw.cmd("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">") == "QUEUED"
    assert raw.cmd("XLEN", "s") == "QUEUED"
    assert raw.cmd("EXEC") == [
        b"3-0", [[b"s", [[b"1-0", [b"f", b"v"]], [b"3-0", [b"a", b"b"]]]]], 2]
    assert raw.cmd("XPENDING", "s", "g")[0] == 2
    assert raw.cmd("DEL", "s", "d") == 2
    assert raw.cmd("XLEN", "s") == 0


def test_consumer_groups_with_redis_py(r):
    """A group through redis-py: CREATE with MKSTREAM, XREADGROUP of new entries and of a
    consumer's history, XPENDING summary and extended form, XACK, XCLAIM, XAUTOCLAIM, XINFO."""
    assert r.xgroup_create("q", "workers", id="$", mkstream=True) is True
    with pytest.raises(Exception, match="BUSYGROUP"):
        r.xgroup_create("q", "workers", id="$")
    ids = [r.xadd("q", {"job": str(i)}) for i in range(5)]
    got = r.xreadgroup("workers", "alice", {"q": ">"}, count=2)
    assert [e[0] for e in got[0][1]] == ids[:2]
    got = r.xreadgroup("workers", "bob", {"q": ">"})
    assert [e[0] for e in got[0][1]] == ids[2:]
    assert r.xreadgroup("workers", "bob", {"q": ">"}) == []
    hist = r.xreadgroup("workers", "alice", {"q": "0"})
    assert [e[0] for e in hist[0][1]] == ids[:2]
    summary = r.xpending("q", "workers")
    assert summary["pending"] == 5 and summary["min"] == ids[0] and summary["max"] == ids[4]
    assert {c["name"]: c["pending"] for c in summary["consumers"]} == {"alice": 2, "bob": 3}
    rng = r.xpending_range("q", "workers", "-", "+", 10, consumername="alice")
    assert [p["message_id"] for p in rng] == ids[:2]
    assert [p["times_delivered"] for p in rng] == [2, 2]
    assert r.xack("q", "workers", ids[0], ids[1]) == 2
    claimed = r.xclaim("q", "workers", "carol", 0, [ids[2]], justid=True)
    assert claimed == [ids[2]]
    auto = r.xautoclaim("q", "workers", "dave", 0, "0-0", count=10)
    assert [e[0] for e in auto[1]] == ids[2:]
    groups = r.xinfo_groups("q")
    assert groups[0]["name"] == "workers" and groups[0]["pending"] == 3
    assert groups[0]["last-delivered-id"] == ids[4]
    consumers = {c["name"]: c["pending"] for c in r.xinfo_consumers("q", "workers")}
    assert consumers == {"alice": 0, "bob": 0, "carol": 0, "dave": 3}
    info = r.xinfo_stream("q")
    assert info["length"] == 5 and info["last-generated-id"] == ids[4]
    assert info["first-entry"][0] == ids[0]
    assert r.xgroup_delconsumer("q", "workers", "dave") == 3
    assert r.xgroup_destroy("q", "workers") == 1


def test_blocking_xread_and_xreadgroup(srv):
    """XREAD BLOCK with $ waits for entries added after it blocked (not older ones) and a
    BLOCK timeout answers nil; XREADGROUP BLOCK is served by the next XADD, once."""
    with srv.raw() as a, srv.raw() as b, srv.raw() as w:
        w.cmd("XADD", "s", "1-0", "old", "1")
        a.send(RawConn.encode("XREAD", "BLOCK", 0, "STREAMS", "s", "$"))
        wait_for(lambda: b"cmd=xread" in w.cmd("CLIENT", "LIST"), 5, "the XREAD to block")
        w.cmd("XADD", "s", "2-0", "new", "2")
        assert a.read() == [[b"s", [[b"2-0", [b"new", b"2"]]]]]
        assert a.cmd("XREAD", "BLOCK", 50, "STREAMS", "s", "$") is None
        w.cmd("XGROUP", "CREATE", "s", "g", "$")
        a.send(RawConn.encode("XREADGROUP", "GROUP", "g", "c1", "BLOCK", 0, "STREAMS", "s", ">"))
        b.send(RawConn.encode("XREADGROUP", "GROUP", "g", "c2", "BLOCK", 0, "STREAMS", "s", ">"))
        wait_for(lambda: w.cmd("CLIENT", "LIST").count(b"cmd=xreadgroup") == 2, 5,
                 "both XREADGROUPs to block")
        w.cmd("XADD", "s", "3-0", "x", "1")
        assert a.read() == [[b"s", [[b"3-0", [b"x", b"1"]]]]]
        w.cmd("XADD", "s", "4-0", "y", "2")
        assert b.read() == [[b"s", [[b"4-0", [b"y", b"2"]]]]]
        assert w.cmd("XPENDING", "s", "g")[3] == [[b"c1", b"1"], [b"c2", b"1"]]


def test_redis_cli_reads_and_writes_streams(srv):
    """redis-cli's XADD, XRANGE and XINFO over a real connection."""
    def cli(*args):
        return subprocess.run(["redis-cli", "-p", str(srv.port)] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=10, check=True).stdout
    assert cli("XADD", "cs", "7-1", "name", "v") == "7-1\n"
    assert cli("XRANGE", "cs", "-", "+") == "7-1\nname\nv\n"
    assert cli("XLEN", "cs") == "1\n"
    assert "last-generated-id\n7-1" in cli("XINFO", "STREAM", "cs")


# ---- a 3-node cluster with partitions ----------------------------------------------------


def _cluster(tmp_path_factory, **extra):
    c = Cluster(tmp_path_factory, 3, dict(extra, partitions=4))
    c.start_all()
    return c


@pytest.fixture
def proxy_cluster(tmp_path_factory):
    c = _cluster(tmp_path_factory)
    yield c
    errors = c.stop_all()
    assert not errors, errors


@pytest.fixture
def moved_cluster(tmp_path_factory):
    c = _cluster(tmp_path_factory, redirect="moved")
    yield c
    errors = c.stop_all()
    assert not errors, errors


def _key_leader(c, key):
    """The index of the node leading key's partition, once every node agrees on one."""
    def find():
        leaders = set()
        for p in c.ports:
            with RawConn(p) as conn:
                slot = conn.cmd("CLUSTER", "KEYSLOT", key)
                for lo, hi, master, *rest in conn.cmd("CLUSTER", "SLOTS"):
                    if lo <= slot <= hi:
                        leaders.add(master[1])
        if len(leaders) == 1:
            return leaders.pop()
        return None
    port = wait_for(find, 20, "every node to agree on %s's leader" % key)
    return c.ports.index(port)


def _replica(port, *cmd):
    with RawConn(port) as conn:
        assert conn.cmd("READONLY") == "OK"
        return conn.cmd(*cmd)


@pytest.mark.halyard_only
def test_streams_through_a_follower_reach_every_replica(proxy_cluster):
    """XADD (auto IDs drawn by the leader), XGROUP, XREADGROUP and XACK sent to a follower of
    the key's partition apply on every replica: the same entries and the same pending entries
    everywhere, and a blocked XREAD with $ on a follower is served by an XADD on the leader."""
    c = proxy_cluster
    key = "{st}stream"
    li = _key_leader(c, key)
    fi = (li + 1) % 3
    with RawConn(c.ports[fi]) as f:
        ids = [f.cmd("XADD", key, "*", "n", str(i)) for i in range(20)]
        assert all(isinstance(i, bytes) for i in ids), ids
        assert f.cmd("XGROUP", "CREATE", key, "g", "0") == "OK"
        got = f.cmd("XREADGROUP", "GROUP", "g", "c1", "COUNT", 5, "STREAMS", key, ">")
        assert [e[0] for e in got[0][1]] == ids[:5]
        assert f.cmd("XACK", key, "g", ids[0]) == 1
        assert f.cmd("XTRIM", key, "MAXLEN", 15) == 5
        want = f.cmd("XRANGE", key, "-", "+")
        pending = f.cmd("XPENDING", key, "g")
    assert [e[0] for e in want] == ids[5:]
    assert pending[0] == 4
    for i in range(3):
        wait_for(lambda: _replica(c.ports[i], "XRANGE", key, "-", "+") == want, 10,
                 "replica %d to hold the stream" % i)
        wait_for(lambda: _replica(c.ports[i], "XPENDING", key, "g") == pending, 10,
                 "replica %d to hold the group's pending entries" % i)
    with RawConn(c.ports[fi]) as blocked, RawConn(c.ports[li]) as leader:
        blocked.send(RawConn.encode("XREAD", "BLOCK", 0, "STREAMS", key, "$"))
        wait_for(lambda: b"cmd=xread" in _replica(c.ports[fi], "CLIENT", "LIST"), 5,
                 "the XREAD to block on the follower")
        new = leader.cmd("XADD", key, "*", "late", "1")
        assert blocked.read() == [[key.encode(), [[new, [b"late", b"1"]]]]]
    with RawConn(c.ports[fi]) as blocked, RawConn(c.ports[li]) as leader:
        got = blocked.cmd("XREADGROUP", "GROUP", "g", "c2", "BLOCK", 0, "STREAMS", key, ">")
        # Entries 5..19 and the late one were still undelivered: served at once.
        assert [e[0] for e in got[0][1]] == ids[5:] + [new]


@pytest.mark.halyard_only
def test_streams_moved_mode_redirects_to_the_partition_leader(moved_cluster):
    """With redirect: moved, a follower answers -MOVED <slot> <leader> for stream writes and
    for XREAD/XREADGROUP, whose keys follow STREAMS; the leader serves them."""
    c = moved_cluster
    key = "{mv}s"
    for _ in range(5):
        # A leader change between finding the leader and asking (an election on a loaded
        # machine, a balancing transfer) names the new one: the round is run again.
        li = _key_leader(c, key)
        fi = (li + 1) % 3
        with RawConn(c.ports[fi]) as f:
            slot = f.cmd("CLUSTER", "KEYSLOT", key)
            want = "MOVED %d 127.0.0.1:%d" % (slot, c.ports[li])
            got = [f.cmd("XADD", key, "*", "a", "1"), f.cmd("XREAD", "COUNT", 1, "STREAMS", key, "0"),
                   f.cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", key, ">")]
        if got == [want] * 3:
            break
        assert _key_leader(c, key) != li, (want, got)
    else:
        raise AssertionError("the partition's leader moved during each of 5 rounds")
    with RawConn(c.ports[li]) as l:
        assert isinstance(l.cmd("XADD", key, "*", "a", "1"), bytes)
        assert l.cmd("XREAD", "COUNT", 1, "STREAMS", key, "0")[0][0] == key.encode()
        part = l.cmd("CLUSTER", "KEYSLOT", key) * 4 // 16384
        other = next(k for k in ("{o%d}k" % i for i in range(100))
                     if l.cmd("CLUSTER", "KEYSLOT", k) * 4 // 16384 != part)
        assert l.cmd("XREAD", "STREAMS", key, other, "0", "0") == (
            "CROSSSLOT Keys in request don't hash to the same slot")


def test_acl_key_patterns_cover_xread_keys(srv):
    """XREAD and XREADGROUP name their keys after STREAMS: a user's key patterns are checked on
    those, as Redis does."""
    with srv.raw() as admin:
        admin.cmd("XADD", "app:s", "1-0", "f", "v")
        admin.cmd("XADD", "secret", "1-0", "f", "v")
        admin.cmd("XGROUP", "CREATE", "secret", "g", "0")
        assert admin.cmd("ACL", "SETUSER", "reader", "on", ">pw", "~app:*", "+@all") == "OK"
        try:
            with srv.raw() as u:
                assert u.cmd("AUTH", "reader", "pw") == "OK"
                assert u.cmd("XREAD", "STREAMS", "app:s", "0") == [
                    [b"app:s", [[b"1-0", [b"f", b"v"]]]]]
                assert u.cmd("XREAD", "COUNT", 1, "STREAMS", "app:s", "secret", "0", "0").startswith(
                    "NOPERM")
                assert u.cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", "secret", ">").startswith(
                    "NOPERM")
        finally:
            admin.cmd("ACL", "DELUSER", "reader")

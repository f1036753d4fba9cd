"""Set commands: replies and exact error texts as Redis 7.0 gives them; SPOP's random choice
made once, by the proposer, so every replica of a 3-node cluster removes the same members."""

import pytest

from cluster import Cluster, info
from conftest import RawConn, wait_for

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def members(c, key):
    return sorted(c.cmd("SMEMBERS", key))


def test_sadd_srem_scard_membership(raw):
    """SADD counts new members, SREM removed ones; the key goes when the set empties."""
    assert raw.cmd("SADD", "s", "a", "b", "a") == 2
    assert raw.cmd("SADD", "s", "b", "c") == 1
    assert raw.cmd("SCARD", "s") == 3
    assert raw.cmd("SISMEMBER", "s", "a") == 1
    assert raw.cmd("SISMEMBER", "s", "z") == 0
    assert raw.cmd("SMISMEMBER", "s", "a", "z", "c") == [1, 0, 1]
    assert raw.cmd("SMISMEMBER", "nokey", "a") == [0]
    assert raw.cmd("SMISMEMBER", "s") == arity("smismember")
    assert members(raw, "s") == [b"a", b"b", b"c"]
    assert raw.cmd("TYPE", "s") == "set"
    assert raw.cmd("SREM", "s", "a", "z") == 1
    assert raw.cmd("SREM", "s", "b", "c") == 2
    assert raw.cmd("EXISTS", "s") == 0
    assert raw.cmd("SCARD", "s") == 0
    assert raw.cmd("SMEMBERS", "s") == []


def test_wrongtype_everywhere(raw):
    """Every set command on a list answers WRONGTYPE and changes nothing."""
    raw.cmd("RPUSH", "l", "a")
    raw.cmd("SADD", "s", "a")
    for args in (("SADD", "l", "a"), ("SREM", "l", "a"), ("SCARD", "l"), ("SISMEMBER", "l", "a"),
                 ("SMISMEMBER", "l", "a"), ("SMEMBERS", "l"), ("SINTER", "s", "l"),
                 ("SUNION", "s", "l"), ("SDIFF", "s", "l"), ("SINTERSTORE", "d", "s", "l"),
                 ("SINTERCARD", 2, "s", "l"), ("SMOVE", "s", "l", "a"), ("SPOP", "l"),
                 ("SRANDMEMBER", "l"), ("SSCAN", "l", 0)):
        assert raw.cmd(*args) == WRONGTYPE, args
    assert raw.cmd("EXISTS", "d") == 0
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"a"]


def test_algebra_and_store(raw):
    """SINTER/SUNION/SDIFF and their STORE forms; a missing key is an empty set; an empty
    result deletes the destination whatever it held."""
    raw.cmd("SADD", "x", "a", "b", "c", "d")
    raw.cmd("SADD", "y", "c", "d", "e")
    assert sorted(raw.cmd("SINTER", "x", "y")) == [b"c", b"d"]
    assert sorted(raw.cmd("SUNION", "x", "y", "nokey")) == [b"a", b"b", b"c", b"d", b"e"]
    assert sorted(raw.cmd("SDIFF", "x", "y")) == [b"a", b"b"]
    assert raw.cmd("SINTER", "x", "nokey") == []
    assert raw.cmd("SDIFF", "nokey", "x") == []
    raw.cmd("SET", "dst", "string")
    assert raw.cmd("SUNIONSTORE", "dst", "x", "y") == 5
    assert raw.cmd("TYPE", "dst") == "set"
    assert raw.cmd("SDIFFSTORE", "x", "x", "y") == 2
    assert members(raw, "x") == [b"a", b"b"]
    assert raw.cmd("SINTERSTORE", "dst", "x", "y") == 0
    assert raw.cmd("EXISTS", "dst") == 0


def test_sintercard(raw):
    """SINTERCARD with LIMIT, and its argument errors."""
    raw.cmd("SADD", "x", *"abcdef")
    raw.cmd("SADD", "y", *"cdefgh")
    assert raw.cmd("SINTERCARD", 2, "x", "y") == 4
    assert raw.cmd("SINTERCARD", 2, "x", "y", "LIMIT", 2) == 2
    assert raw.cmd("SINTERCARD", 2, "x", "y", "LIMIT", 0) == 4
    assert raw.cmd("SINTERCARD", 2, "x", "nokey") == 0
    assert raw.cmd("SINTERCARD", 0, "x") == "ERR numkeys should be greater than 0"
    assert raw.cmd("SINTERCARD", 3, "x", "y") == "ERR Number of keys can't be greater than number of args"
    assert raw.cmd("SINTERCARD", 2, "x", "y", "LIMIT", -1) == "ERR LIMIT can't be negative"
    assert raw.cmd("SINTERCARD", 2, "x", "y", "FOO") == SYNTAX


def test_smove(raw):
    """SMOVE moves one member, 0 when the source or member is missing."""
    raw.cmd("SADD", "a", "1", "2")
    assert raw.cmd("SMOVE", "a", "b", "1") == 1
    assert raw.cmd("SMOVE", "a", "b", "9") == 0
    assert raw.cmd("SMOVE", "nokey", "b", "1") == 0
    assert raw.cmd("SMOVE", "a", "a", "2") == 1
    assert raw.cmd("SMOVE", "a", "b", "2") == 1
    assert raw.cmd("EXISTS", "a") == 0
    assert members(raw, "b") == [b"1", b"2"]


def test_spop_srandmember(raw):
    """SPOP removes what it returns; SRANDMEMBER only reads, distinct for a positive count,
    exactly -count picks for a negative one."""
    raw.cmd("SADD", "s", *[str(i) for i in range(20)])
    popped = raw.cmd("SPOP", "s", 5)
    assert len(set(popped)) == 5
    left = raw.cmd("SMEMBERS", "s")
    assert len(left) == 15 and not set(popped) & set(left)
    one = raw.cmd("SPOP", "s")
    assert raw.cmd("SISMEMBER", "s", one) == 0 and raw.cmd("SCARD", "s") == 14
    assert raw.cmd("SPOP", "s", 0) == []
    assert raw.cmd("SPOP", "s", -1) == "ERR value is out of range, must be positive"
    assert raw.cmd("SPOP", "s", 1, 2) == SYNTAX
    assert raw.cmd("SPOP", "nokey") is None
    assert raw.cmd("SPOP", "nokey", 3) == []
    picks = raw.cmd("SRANDMEMBER", "s", 10)
    assert len(set(picks)) == 10 and set(picks) <= set(raw.cmd("SMEMBERS", "s"))
    assert sorted(raw.cmd("SRANDMEMBER", "s", 100)) == sorted(raw.cmd("SMEMBERS", "s"))
    assert len(raw.cmd("SRANDMEMBER", "s", -30)) == 30
    assert raw.cmd("SRANDMEMBER", "nokey") is None
    assert raw.cmd("SRANDMEMBER", "nokey", 5) == []
    assert raw.cmd("SCARD", "s") == 14
    assert raw.cmd("SPOP", "s", 100) and raw.cmd("EXISTS", "s") == 0


def test_sscan_and_encoding(raw):
    """SSCAN returns every member once over a full iteration, MATCH filters; OBJECT ENCODING
    says intset for small integer sets and hashtable otherwise, as Redis 7.0 does."""
    raw.cmd("SADD", "big", *["m%d" % i for i in range(500)])
    seen, cursor = [], b"0"
    while True:
        cursor, batch = raw.cmd("SSCAN", "big", cursor, "COUNT", 50)
        seen += batch
        if cursor == b"0":
            break
    assert sorted(set(seen)) == sorted(b"m%d" % i for i in range(500))
    cursor, batch = raw.cmd("SSCAN", "big", 0, "MATCH", "m49*", "COUNT", 1000)
    assert cursor == b"0" and sorted(batch) == sorted([b"m49"] + [b"m49%d" % i for i in range(10)])
    raw.cmd("SADD", "ints", 1, 2, 3)
    assert raw.cmd("OBJECT", "ENCODING", "ints") == b"intset"
    assert raw.cmd("OBJECT", "ENCODING", "big") == b"hashtable"
    assert raw.cmd("CONFIG", "SET", "set-max-intset-entries", 2) == "OK"
    assert raw.cmd("OBJECT", "ENCODING", "ints") == b"intset"  # converted by a write, as Redis
    assert raw.cmd("SADD", "ints", 4) == 1
    assert raw.cmd("OBJECT", "ENCODING", "ints") == b"hashtable"
    assert sorted(raw.cmd("SMEMBERS", "ints")) == [b"1", b"2", b"3", b"4"]
    assert raw.cmd("CONFIG", "GET", "set-max-intset-entries") == [b"set-max-intset-entries", b"2"]
    assert raw.cmd("CONFIG", "SET", "set-max-intset-entries", 512) == "OK"
    assert raw.cmd("CONFIG", "SET", "set-max-intset-entries", "x").startswith("ERR CONFIG SET failed")


def test_encoding_settings_are_accepted(raw):
    """Redis's encoding thresholds can be read and set (Redis's test suite sets them), in both
    spellings, all or nothing."""
    assert raw.cmd("CONFIG", "SET", "list-max-ziplist-size", -1, "hash-max-listpack-entries", 16) == "OK"
    assert raw.cmd("CONFIG", "GET", "list-max-listpack-size") == [b"list-max-listpack-size", b"-1"]
    assert raw.cmd("CONFIG", "GET", "hash-max-ziplist-entries") == [b"hash-max-ziplist-entries", b"16"]
    r = raw.cmd("CONFIG", "SET", "hash-max-listpack-entries", 99, "nosuch", 1)
    assert r.startswith("ERR Unknown option")
    assert raw.cmd("CONFIG", "GET", "hash-max-listpack-entries") == [b"hash-max-listpack-entries", b"16"]
    assert raw.cmd("CONFIG", "SET", "save", "") == "OK"
    assert raw.cmd("CONFIG", "SET", "list-max-listpack-size", -2, "hash-max-listpack-entries", 128) == "OK"


def test_encoding_thresholds_apply(raw):
    """CONFIG SET's thresholds decide when a small hash, set or sorted set leaves its compact
    encoding (listpack, intset), as Redis 7.0's do: at the next write past them, for good; the
    values read back unchanged."""
    assert raw.cmd("CONFIG", "SET", "hash-max-ziplist-entries", 2, "hash-max-listpack-value", 4,
                   "zset-max-listpack-entries", 2, "zset-max-ziplist-value", 4) == "OK"
    raw.cmd("HSET", "h", "a", "1", "b", "2")
    assert raw.cmd("OBJECT", "ENCODING", "h") == b"listpack"
    raw.cmd("HSET", "h", "c", "3")
    assert raw.cmd("OBJECT", "ENCODING", "h") == b"hashtable"
    raw.cmd("HSET", "h2", "a", "12345")
    assert raw.cmd("OBJECT", "ENCODING", "h2") == b"hashtable"
    raw.cmd("HDEL", "h", "c", "b")
    assert raw.cmd("OBJECT", "ENCODING", "h") == b"hashtable"  # never back
    assert raw.cmd("HGETALL", "h") == [b"a", b"1"]
    raw.cmd("ZADD", "z", 1, "a", "2.5", "b")
    assert raw.cmd("OBJECT", "ENCODING", "z") == b"listpack"
    raw.cmd("ZADD", "z", -3, "c")
    assert raw.cmd("OBJECT", "ENCODING", "z") == b"skiplist"
    assert raw.cmd("ZRANGE", "z", 0, -1, "WITHSCORES") == [b"c", b"-3", b"a", b"1", b"b", b"2.5"]
    raw.cmd("SADD", "s", 7, -70000, 9999999999)
    assert raw.cmd("OBJECT", "ENCODING", "s") == b"intset"
    assert raw.cmd("SMEMBERS", "s") == [b"-70000", b"7", b"9999999999"]
    raw.cmd("SADD", "s", "x")
    assert raw.cmd("OBJECT", "ENCODING", "s") == b"hashtable"
    assert raw.cmd("SISMEMBER", "s", "9999999999") == 1
    assert raw.cmd("CONFIG", "SET", "hash-max-listpack-entries", 128, "hash-max-listpack-value", 64,
                   "zset-max-listpack-entries", 128, "zset-max-listpack-value", 64) == "OK"


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


def _replica_members(port, key):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return sorted(c.cmd("SMEMBERS", key))


@pytest.mark.halyard_only
def test_spop_through_a_follower_removes_the_same_members_everywhere(cluster):
    """SPOPs sent to a follower (pipelined, so several are in flight at once) remove exactly the
    members they return, and every replica ends with the same set."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10, "the follower to learn who leads")
    everything = [b"m%d" % i for i in range(200)]
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("SADD", "s", *everything) == 200
        f.send(b"".join(f.encode("SPOP", "s", 7) for _ in range(20)))
        popped = [m for _ in range(20) for m in f.read()]
        assert len(popped) == 140 and len(set(popped)) == 140
        assert f.cmd("SMOVE", "s", "t", f.cmd("SRANDMEMBER", "s")) == 1
        assert f.cmd("SUNIONSTORE", "u", "s", "t") == 60
        want = sorted(f.cmd("SMEMBERS", "s"))
    assert len(want) == 59 and not set(want) & set(popped)
    for i in range(3):
        wait_for(lambda: _replica_members(cluster.ports[i], "s") == want, 10,
                 "replica %d to apply the set writes" % i)
        # SUNIONSTORE is the entry after the last one that changed s: wait for it too (a
        # replica whose s is final may not have applied it yet).
        wait_for(lambda: len(_replica_members(cluster.ports[i], "u")) == 60, 10,
                 "replica %d to apply SUNIONSTORE" % i)


@pytest.mark.halyard_only
def test_encoding_thresholds_through_a_follower_reach_every_replica(cluster):
    """A CONFIG SET of encoding thresholds on a follower is an entry of the partition's log (as
    Redis's suite sets them, through whatever node it talks to): the leader, whose OBJECT
    ENCODING a follower's client reads, lays the next collections out by them, and so does every
    replica, which also answers CONFIG GET with them once it applied the entry."""
    li = cluster.leader(30)
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 30, "the follower to know its leader")
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("CONFIG", "SET", "hash-max-ziplist-entries", 2, "set-max-intset-entries", 1,
                     "stream-node-max-entries", 7) == "OK"
        assert f.cmd("CONFIG", "SET", "hash-max-listpack-entries", "x") == (
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-entries') - "
            "argument couldn't be parsed into an integer")
        f.cmd("HSET", "eh", "a", "1", "b", "2", "c", "3")
        f.cmd("SADD", "es", 1, 2)
        assert f.cmd("OBJECT", "ENCODING", "eh") == b"hashtable"
        assert f.cmd("OBJECT", "ENCODING", "es") == b"hashtable"
    for p in cluster.ports:
        def applied():
            with RawConn(p) as c:
                return (c.cmd("CONFIG", "GET", "hash-max-listpack-entries") ==
                        [b"hash-max-listpack-entries", b"2"] and
                        c.cmd("CONFIG", "GET", "stream-node-max-entries") ==
                        [b"stream-node-max-entries", b"7"])
        wait_for(applied, 30, "node %d to apply the thresholds" % p)
        wait_for(lambda: _readonly(p, "HLEN", "eh") == 3 and _readonly(p, "SCARD", "es") == 2, 30,
                 "node %d to apply the HSET and SADD" % p)
        assert _readonly(p, "OBJECT", "ENCODING", "eh") == b"hashtable"
        assert _readonly(p, "OBJECT", "ENCODING", "es") == b"hashtable"
    with RawConn(cluster.ports[li]) as l:
        assert l.cmd("CONFIG", "SET", "hash-max-listpack-entries", 128, "set-max-intset-entries",
                     512, "stream-node-max-entries", 100) == "OK"
        l.cmd("HSET", "eh2", "a", "1", "b", "2", "c", "3")
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("OBJECT", "ENCODING", "eh2") == b"listpack"


def _readonly(port, *cmd):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return c.cmd(*cmd)

"""List commands: replies and exact error texts as Redis 7.0 gives them, and lists replicated
through a follower of a 3-node cluster to every replica, across a snapshot and a restart."""

import pytest

from cluster import Cluster, info
from conftest import RawConn, wait_for

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"
POSITIVE = "ERR value is out of range, must be positive"
SYNTAX = "ERR syntax error"


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def test_push_pop_both_ends(raw):
    """LPUSH/RPUSH return the new length; LPOP/RPOP take from either end; the key goes when
    the list empties."""
    assert raw.cmd("RPUSH", "l", "a", "b") == 2
    assert raw.cmd("LPUSH", "l", "y", "z") == 4
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"z", b"y", b"a", b"b"]
    assert raw.cmd("LPOP", "l") == b"z"
    assert raw.cmd("RPOP", "l") == b"b"
    assert raw.cmd("TYPE", "l") == "list"
    assert raw.cmd("OBJECT", "ENCODING", "l") == b"quicklist"
    assert raw.cmd("LPOP", "l", 5) == [b"y", b"a"]
    assert raw.cmd("EXISTS", "l") == 0
    assert raw.cmd("LPOP", "l") is None
    assert raw.cmd("LPUSH", "l") == arity("lpush")


def test_pop_count_forms(raw):
    """With a count: an array (empty for 0), a null array for a missing key, and Redis's errors
    for a negative or non-integer count."""
    raw.cmd("RPUSH", "l", "1", "2", "3")
    assert raw.cmd("RPOP", "l", 0) == []
    assert raw.cmd("RPOP", "l", 2) == [b"3", b"2"]
    assert raw.cmd("LPOP", "nokey", 2) is None
    assert raw.cmd("LPOP", "l", -1) == POSITIVE
    assert raw.cmd("LPOP", "l", "x") == NOT_INT
    assert raw.cmd("LPOP", "l", 1, 2) == arity("lpop")
    assert raw.cmd("LLEN", "l") == 1


def test_pushx_only_on_existing_lists(raw):
    """LPUSHX/RPUSHX answer 0 and create nothing when the key is missing."""
    assert raw.cmd("LPUSHX", "l", "a") == 0
    assert raw.cmd("EXISTS", "l") == 0
    raw.cmd("RPUSH", "l", "m")
    assert raw.cmd("LPUSHX", "l", "a", "b") == 3
    assert raw.cmd("RPUSHX", "l", "z") == 4
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"b", b"a", b"m", b"z"]


def test_wrongtype_everywhere(raw):
    """Every list command on a string answers WRONGTYPE and changes nothing."""
    raw.cmd("SET", "s", "v")
    for args in (("LPUSH", "s", "a"), ("RPUSHX", "s", "a"), ("LPOP", "s"), ("RPOP", "s", 2),
                 ("LLEN", "s"), ("LRANGE", "s", 0, 1), ("LINDEX", "s", 0), ("LSET", "s", 0, "a"),
                 ("LINSERT", "s", "BEFORE", "a", "b"), ("LREM", "s", 0, "a"),
                 ("LTRIM", "s", 0, 1), ("LPOS", "s", "a"), ("LMOVE", "s", "d", "LEFT", "LEFT"),
                 ("LMPOP", 1, "s", "LEFT")):
        assert raw.cmd(*args) == WRONGTYPE, args
    assert raw.cmd("GET", "s") == b"v"


def test_lrange_lindex_indexes(raw):
    """Negative indexes count from the tail; out-of-range ranges clamp, or are empty."""
    raw.cmd("RPUSH", "l", *"abcde")
    assert raw.cmd("LRANGE", "l", 1, -2) == [b"b", b"c", b"d"]
    assert raw.cmd("LRANGE", "l", -100, 100) == [b"a", b"b", b"c", b"d", b"e"]
    assert raw.cmd("LRANGE", "l", 3, 1) == []
    assert raw.cmd("LRANGE", "l", 5, 10) == []
    assert raw.cmd("LRANGE", "nokey", 0, -1) == []
    assert raw.cmd("LRANGE", "l", "a", 1) == NOT_INT
    assert raw.cmd("LINDEX", "l", -1) == b"e"
    assert raw.cmd("LINDEX", "l", 5) is None
    assert raw.cmd("LINDEX", "nokey", 0) is None


def test_lset_linsert_lrem_ltrim(raw):
    """In-place edits with Redis's replies: LSET errors, LINSERT -1/0, LREM direction, LTRIM."""
    assert raw.cmd("LSET", "l", 0, "x") == "ERR no such key"
    raw.cmd("RPUSH", "l", "a", "b", "a", "c", "a")
    assert raw.cmd("LSET", "l", -1, "A") == "OK"
    assert raw.cmd("LSET", "l", 9, "x") == "ERR index out of range"
    assert raw.cmd("LINSERT", "l", "AFTER", "b", "n") == 6
    assert raw.cmd("LINSERT", "l", "BEFORE", "zz", "n") == -1
    assert raw.cmd("LINSERT", "nokey", "BEFORE", "a", "n") == 0
    assert raw.cmd("LINSERT", "l", "MIDDLE", "a", "n") == SYNTAX
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"a", b"b", b"n", b"a", b"c", b"A"]
    assert raw.cmd("LREM", "l", -1, "a") == 1
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"a", b"b", b"n", b"c", b"A"]
    assert raw.cmd("LREM", "l", 0, "nope") == 0
    assert raw.cmd("LTRIM", "l", 1, -2) == "OK"
    assert raw.cmd("LRANGE", "l", 0, -1) == [b"b", b"n", b"c"]
    assert raw.cmd("LTRIM", "l", 2, 1) == "OK"
    assert raw.cmd("EXISTS", "l") == 0


def test_lpos_options(raw):
    """LPOS with RANK, COUNT and MAXLEN, and its argument errors."""
    raw.cmd("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c")
    assert raw.cmd("LPOS", "l", "c") == 2
    assert raw.cmd("LPOS", "l", "c", "RANK", 2) == 6
    assert raw.cmd("LPOS", "l", "c", "RANK", -1) == 7
    assert raw.cmd("LPOS", "l", "c", "COUNT", 0) == [2, 6, 7]
    assert raw.cmd("LPOS", "l", "c", "COUNT", 2, "RANK", -1) == [7, 6]
    assert raw.cmd("LPOS", "l", "c", "COUNT", 0, "MAXLEN", 7) == [2, 6]
    assert raw.cmd("LPOS", "l", "x") is None
    assert raw.cmd("LPOS", "l", "x", "COUNT", 1) == []
    assert raw.cmd("LPOS", "nokey", "x", "COUNT", 1) == []
    assert raw.cmd("LPOS", "l", "c", "RANK", 0).startswith("ERR RANK can't be zero")
    assert raw.cmd("LPOS", "l", "c", "COUNT", -1) == "ERR COUNT can't be negative"
    assert raw.cmd("LPOS", "l", "c", "MAXLEN", -1) == "ERR MAXLEN can't be negative"
    assert raw.cmd("LPOS", "l", "c", "FOO", 1) == SYNTAX
    assert raw.cmd("LPOS", "l", "c", "RANK") == SYNTAX


def test_lmove_rpoplpush(raw):
    """LMOVE between lists and onto itself (rotation); RPOPLPUSH is LMOVE RIGHT LEFT."""
    raw.cmd("RPUSH", "a", "1", "2", "3")
    assert raw.cmd("LMOVE", "a", "a", "RIGHT", "LEFT") == b"3"
    assert raw.cmd("LRANGE", "a", 0, -1) == [b"3", b"1", b"2"]
    assert raw.cmd("LMOVE", "a", "b", "LEFT", "RIGHT") == b"3"
    assert raw.cmd("RPOPLPUSH", "a", "b") == b"2"
    assert raw.cmd("LRANGE", "b", 0, -1) == [b"2", b"3"]
    assert raw.cmd("LMOVE", "nokey", "b", "LEFT", "LEFT") is None
    assert raw.cmd("LMOVE", "a", "b", "UP", "LEFT") == SYNTAX
    raw.cmd("SET", "s", "v")
    assert raw.cmd("LMOVE", "a", "s", "LEFT", "LEFT") == WRONGTYPE
    assert raw.cmd("LRANGE", "a", 0, -1) == [b"1"]


def test_lmpop(raw):
    """LMPOP pops from the first non-empty list and names it; argument errors as Redis's."""
    raw.cmd("RPUSH", "b", "1", "2", "3")
    assert raw.cmd("LMPOP", 2, "a", "b", "LEFT") == [b"b", [b"1"]]
    assert raw.cmd("LMPOP", 2, "a", "b", "RIGHT", "COUNT", 10) == [b"b", [b"3", b"2"]]
    assert raw.cmd("LMPOP", 2, "a", "b", "LEFT") is None
    assert raw.cmd("LMPOP", 0, "a", "LEFT") == "ERR numkeys should be greater than 0"
    assert raw.cmd("LMPOP", 3, "a", "LEFT") == SYNTAX
    assert raw.cmd("LMPOP", 1, "a", "LEFT", "COUNT", 0) == "ERR count should be greater than 0"
    assert raw.cmd("LMPOP", 1, "a", "LEFT", "COUNT", 1, "COUNT", 1) == SYNTAX
    assert raw.cmd("LMPOP", 1, "a", "SIDEWAYS") == SYNTAX


def test_resp3_pop_replies(srv):
    """Through RESP3 a missing key's POP with a count is a null, and LRANGE an array."""
    with srv.raw() as c:
        c.cmd("HELLO", 3)
        assert c.cmd("LPOP", "nokey", 2) is None
        c.cmd("RPUSH", "l", "x")
        assert c.cmd("LRANGE", "l", 0, -1) == [b"x"]


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


def _replica_view(port, key):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return c.cmd("LRANGE", key, 0, -1)


@pytest.mark.halyard_only
def test_lists_through_a_follower_reach_every_replica(cluster):
    """List writes sent to a follower are proxied, applied on every replica in the same order,
    and survive a snapshot and a restart of that follower."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10, "the follower to learn who leads")
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("RPUSH", "q", *[str(i) for i in range(10)]) == 10
        assert f.cmd("LPOP", "q", 3) == [b"0", b"1", b"2"]
        assert f.cmd("LMOVE", "q", "q2", "RIGHT", "LEFT") == b"9"
        assert f.cmd("LINSERT", "q", "BEFORE", "5", "x") == 7
        assert f.cmd("LREM", "q", 0, "4") == 1
        assert f.cmd("LTRIM", "q", 0, 4) == "OK"
        assert f.cmd("LSET", "q", 0, "first") == "OK"
        want = [b"first", b"x", b"5", b"6", b"7"]
        assert f.cmd("LRANGE", "q", 0, -1) == want
    for i in range(3):
        wait_for(lambda: _replica_view(cluster.ports[i], "q") == want, 10,
                 "replica %d to apply the list writes" % i)
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("HALYARD", "SNAPSHOT").startswith("OK")
    cluster.kill(fi)
    cluster.start(fi)
    wait_for(lambda: _replica_view(cluster.ports[fi], "q") == want, 10, "the restarted follower to recover q")
    assert _replica_view(cluster.ports[fi], "q2") == [b"9"]


def test_memory_usage_follows_the_value(raw):
    """MEMORY USAGE counts a key's bytes: more elements, more bytes; nil for a missing key."""
    raw.cmd("RPUSH", "l", "a")
    small = raw.cmd("MEMORY", "USAGE", "l")
    raw.cmd("RPUSH", "l", *["element-%d" % i for i in range(100)])
    big = raw.cmd("MEMORY", "USAGE", "l", "SAMPLES", 0)
    assert 0 < small < big and big > 100 * len("element-00")
    assert raw.cmd("MEMORY", "USAGE", "nokey") is None
    assert raw.cmd("MEMORY", "USAGE", "l", "FOO", 1) == SYNTAX
    assert raw.cmd("MEMORY", "DOCTOR").startswith("ERR unknown subcommand")

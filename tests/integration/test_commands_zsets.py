"""Sorted set commands: replies and exact error texts as Redis 7.0 gives them, and sorted sets
replicated through a follower of a 3-node cluster to every replica."""

import pytest

from cluster import Cluster, info
from conftest import RawConn, wait_for

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"


def test_zadd_options_and_replies(raw):
    """ZADD's options and their incompatibilities, INCR's reply, CH's count."""
    assert raw.cmd("ZADD", "z", 1, "a", 2, "b") == 2
    assert raw.cmd("ZADD", "z", "CH", 5, "a", 2, "b", 3, "c") == 2
    assert raw.cmd("ZADD", "z", "GT", "CH", 1, "a", 9, "b") == 1
    assert raw.cmd("ZADD", "z", "XX", "INCR", 1, "nope") is None
    assert raw.cmd("ZADD", "z", "INCR", "0.5", "c") == b"3.5"
    assert raw.cmd("ZINCRBY", "z", -1, "c") == b"2.5"
    assert raw.cmd("ZADD", "z", "NX", "XX", 1, "a") == "ERR XX and NX options at the same time are not compatible"
    assert raw.cmd("ZADD", "z", "GT", "LT", 1, "a") == "ERR GT, LT, and/or NX options at the same time are not compatible"
    assert raw.cmd("ZADD", "z", "INCR", 1, "a", 2, "b") == "ERR INCR option supports a single increment-element pair"
    assert raw.cmd("ZADD", "z", 1, "a", 2) == SYNTAX
    assert raw.cmd("ZADD", "z", "x", "a") == "ERR value is not a valid float"
    assert raw.cmd("ZADD", "z", "nan", "a") == "ERR value is not a valid float"
    assert raw.cmd("ZRANGE", "z", 0, -1, "WITHSCORES") == [b"c", b"2.5", b"a", b"5", b"b", b"9"]
    assert raw.cmd("TYPE", "z") == "zset"
    assert raw.cmd("OBJECT", "ENCODING", "z") == b"listpack"
    raw.cmd("SET", "s", "v")
    assert raw.cmd("ZADD", "s", 1, "a") == WRONGTYPE
    assert raw.cmd("ZRANGE", "s", 0, -1) == WRONGTYPE


def test_ranges_ranks_counts(raw):
    """ZRANGE by rank, score and lex, reversed and limited; ranks, counts and scores."""
    raw.cmd("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e")
    assert raw.cmd("ZRANGE", "z", 1, 2) == [b"b", b"c"]
    assert raw.cmd("ZRANGE", "z", 0, 1, "REV") == [b"e", b"d"]
    assert raw.cmd("ZREVRANGE", "z", 0, 0, "WITHSCORES") == [b"e", b"5"]
    assert raw.cmd("ZRANGE", "z", "(1", 3, "BYSCORE") == [b"b", b"c"]
    assert raw.cmd("ZRANGE", "z", "+inf", "(3", "BYSCORE", "REV") == [b"e", b"d"]
    assert raw.cmd("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 1, 2) == [b"b", b"c"]
    assert raw.cmd("ZREVRANGEBYSCORE", "z", 5, 1, "LIMIT", 0, 1, "WITHSCORES") == [b"e", b"5"]
    assert raw.cmd("ZRANGE", "z", 0, 1, "LIMIT", 0, 1) == "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    assert raw.cmd("ZRANGE", "z", "x", 1, "BYSCORE") == "ERR min or max is not a float"
    assert raw.cmd("ZRANK", "z", "c") == 2
    assert raw.cmd("ZREVRANK", "z", "c") == 2
    assert raw.cmd("ZRANK", "z", "nope") is None
    assert raw.cmd("ZCOUNT", "z", "(1", "+inf") == 4
    assert raw.cmd("ZSCORE", "z", "d") == b"4"
    assert raw.cmd("ZMSCORE", "z", "a", "nope") == [b"1", None]
    assert raw.cmd("ZCARD", "z") == 5
    raw.cmd("ZADD", "lex", 0, "a", 0, "b", 0, "c", 0, "d")
    assert raw.cmd("ZRANGEBYLEX", "lex", "(a", "[c") == [b"b", b"c"]
    assert raw.cmd("ZREVRANGEBYLEX", "lex", "+", "-", "LIMIT", 0, 2) == [b"d", b"c"]
    assert raw.cmd("ZLEXCOUNT", "lex", "-", "(c") == 2
    assert raw.cmd("ZRANGEBYLEX", "lex", "a", "c") == "ERR min or max not valid string range item"
    assert raw.cmd("ZRANGE", "nokey", 0, -1) == []


def test_pops_and_removals(raw):
    """ZPOPMIN/MAX, ZMPOP, ZREMRANGEBY* and ZREM; the key goes with its last member."""
    raw.cmd("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d")
    assert raw.cmd("ZPOPMIN", "z") == [b"a", b"1"]
    assert raw.cmd("ZPOPMAX", "z", 2) == [b"d", b"4", b"c", b"3"]
    assert raw.cmd("ZPOPMIN", "nokey") == []
    assert raw.cmd("ZPOPMIN", "z", -1) == "ERR value is out of range, must be positive"
    assert raw.cmd("ZMPOP", 2, "nokey", "z", "MIN", "COUNT", 5) == [b"z", [[b"b", b"2"]]]
    assert raw.cmd("ZMPOP", 1, "z", "MIN") is None
    assert raw.cmd("ZMPOP", 1, "z", "MIDDLE") == SYNTAX
    raw.cmd("ZADD", "r", 1, "a", 2, "b", 3, "c", 4, "d", 5, "e")
    assert raw.cmd("ZREMRANGEBYRANK", "r", 0, 0) == 1
    assert raw.cmd("ZREMRANGEBYSCORE", "r", "(2", 4) == 2
    assert raw.cmd("ZREMRANGEBYLEX", "r", "-", "+") == 2
    assert raw.cmd("EXISTS", "r") == 0


def test_union_inter_diff(raw):
    """Z{UNION,INTER,DIFF}[STORE] with weights, aggregates, a plain set as input; ZRANGESTORE;
    ZINTERCARD."""
    raw.cmd("ZADD", "a", 1, "x", 2, "y")
    raw.cmd("ZADD", "b", 10, "y", 20, "z")
    raw.cmd("SADD", "s", "x", "z")
    assert raw.cmd("ZUNION", 2, "a", "b", "WITHSCORES") == [b"x", b"1", b"y", b"12", b"z", b"20"]
    assert raw.cmd("ZINTER", 2, "a", "b", "WEIGHTS", 2, 1, "AGGREGATE", "MIN", "WITHSCORES") == [b"y", b"4"]
    assert raw.cmd("ZDIFF", 2, "a", "b") == [b"x"]
    assert raw.cmd("ZUNIONSTORE", "u", 2, "a", "s", "AGGREGATE", "MAX") == 3
    assert raw.cmd("ZRANGE", "u", 0, -1, "WITHSCORES") == [b"x", b"1", b"z", b"1", b"y", b"2"]
    assert raw.cmd("ZINTERSTORE", "i", 2, "a", "nokey") == 0
    assert raw.cmd("EXISTS", "i") == 0
    assert raw.cmd("ZINTERCARD", 2, "a", "b", "LIMIT", 1) == 1
    assert raw.cmd("ZUNION", 0, "a") == "ERR at least 1 input key is needed for 'zunion' command"
    assert raw.cmd("ZUNION", 1, "a", "WEIGHTS", "x") == "ERR weight value is not a float"
    assert raw.cmd("ZRANGESTORE", "rs", "u", 1, "+inf", "BYSCORE", "LIMIT", 0, 2) == 2
    assert raw.cmd("ZRANGE", "rs", 0, -1) == [b"x", b"z"]
    raw.cmd("SET", "str", "v")
    assert raw.cmd("ZUNIONSTORE", "u", 2, "a", "str") == WRONGTYPE


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
        return c.cmd("ZRANGE", key, 0, -1, "WITHSCORES")


@pytest.mark.halyard_only
def test_sorted_sets_through_a_follower_reach_every_replica(cluster):
    """Sorted set writes sent to a follower are applied on every replica, which end with the
    same members and scores, also after a snapshot and a restart of that follower."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10, "the follower to learn who leads")
    with RawConn(cluster.ports[fi]) as f:
        args = []
        for i in range(50):
            args += [i % 7, "m%d" % i]
        assert f.cmd("ZADD", "z", *args) == 50
        assert f.cmd("ZINCRBY", "z", "2.5", "m3") == b"5.5"
        assert len(f.cmd("ZPOPMAX", "z", 5)) == 10
        assert f.cmd("ZREMRANGEBYSCORE", "z", 0, "(1") == 8
        assert f.cmd("ZUNIONSTORE", "u", 1, "z", "WEIGHTS", 2) == 37
        want = f.cmd("ZRANGE", "z", 0, -1, "WITHSCORES")
    for i in range(3):
        wait_for(lambda: _replica_view(cluster.ports[i], "z") == want, 10,
                 "replica %d to apply the sorted set writes" % i)
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("HALYARD", "SNAPSHOT").startswith("OK")
    cluster.kill(fi)
    cluster.start(fi)
    wait_for(lambda: _replica_view(cluster.ports[fi], "z") == want, 10, "the restarted follower to recover z")
    assert len(_replica_view(cluster.ports[fi], "u")) == 74

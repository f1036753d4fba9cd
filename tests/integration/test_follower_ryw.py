"""Read-your-writes through a follower (issue 13): a follower decides a few things from its own
replica (whether a blocking pop or XREAD BLOCK can be served now, INFO's counters, CONFIG
GET's encoding thresholds), and its replica learns that an entry committed only from the
leader's next message. Each command below follows a write the same follower forwarded and the
leader acknowledged, and must see it, as on one Redis server: the follower waits for its
replica to apply the index the leader reported with the write (HY.APPLIED, proxy.c).

Each test repeats its step a few times with fresh keys: on a follower that decides at once
(the bug), one round in several finds the replica already caught up by chance, the others
answer as if the write had not happened."""

import pytest

from cluster import with_follower
from conftest import RawConn, RespError, wait_for

pytestmark = pytest.mark.halyard_only

ROUNDS = 6


@pytest.fixture(scope="module")
def follower(tmp_path_factory):
    """A 3-node cluster and the client port of a node that does not lead."""
    with with_follower(tmp_path_factory) as (c, fi):
        with RawConn(c.ports[fi]) as r:
            r.cmd("SET", "warmup", "1")  # the follower's own session is open from here on
        yield c.ports[fi]


def test_blpop_gets_its_own_push(follower):
    """LPUSH then BLPOP with a short timeout: the element is there, so BLPOP answers it (a
    timeout only matters when nothing is there; Redis pops at once)."""
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            key = "ryw:list:%d" % i
            assert r.cmd("LPUSH", key, "mine") == 1
            assert r.cmd("BLPOP", key, "0.01") == [key.encode(), b"mine"], "round %d" % i


def test_brpoplpush_and_blmove_get_their_own_push(follower):
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            src, dst = "{ryw:mv%d}:src" % i, "{ryw:mv%d}:dst" % i
            r.cmd("RPUSH", src, "a", "b")
            assert r.cmd("BRPOPLPUSH", src, dst, "0.01") == b"b", "round %d" % i
            r.cmd("RPUSH", src, "c")
            assert r.cmd("BLMOVE", src, dst, "LEFT", "RIGHT", "0.01") == b"a", "round %d" % i


def test_bzpopmin_gets_its_own_zadd(follower):
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            key = "ryw:z:%d" % i
            r.cmd("ZADD", key, 1, "m")
            assert r.cmd("BZPOPMIN", key, "0.01") == [key.encode(), b"m", b"1"], "round %d" % i


def test_bzpopmin_of_its_own_string_is_wrongtype(follower):
    """A key the client just SET to a string: Redis answers WRONGTYPE at once. Judged on a
    replica without the SET, the pop blocks, and a key of another type never wakes a blocked
    client: it answered null at its timeout."""
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            key = "ryw:str:%d" % i
            r.cmd("SET", key, "v")
            reply = r.cmd("BZPOPMIN", key, "0.5")
            assert isinstance(reply, str) and reply.startswith("WRONGTYPE"), "round %d: %r" % (i, reply)


def test_push_on_one_connection_pop_on_another(follower):
    """What the follower acknowledged to one client is seen by its other clients' blocking
    pops (Redis's test suite pushes with one client and pops with another)."""
    with RawConn(follower) as a, RawConn(follower) as b:
        for i in range(ROUNDS):
            key = "ryw:x:%d" % i
            a.cmd("RPUSH", key, "e")
            assert b.cmd("BRPOP", key, "0.01") == [key.encode(), b"e"], "round %d" % i


def test_xreadgroup_sees_its_own_xadd(follower):
    """XADD then XREADGROUP BLOCK 10: the entry is there, so it is delivered (stream-cgroups'
    "Blocking XREADGROUP will not reply with an empty array")."""
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            key = "ryw:s:%d" % i
            assert r.cmd("XGROUP", "CREATE", key, "g", "$", "MKSTREAM") == "OK"
            r.cmd("XADD", key, "%d-1" % (i + 1), "f", "v")
            got = r.cmd("XREADGROUP", "GROUP", "g", "alice", "BLOCK", 10, "STREAMS", key, ">")
            assert got == [[key.encode(), [[b"%d-1" % (i + 1), [b"f", b"v"]]]]], "round %d: %r" % (i, got)


def test_info_counts_its_own_writes(follower):
    """INFO's rdb_changes_since_last_save is this node's counter: read after a write the leader
    acknowledged, it counts it (bitops' "SETBIT/BITFIELD only increase dirty when the value
    changed")."""

    def dirty(r):
        text = r.cmd("INFO", "persistence").decode()
        return int(text.split("rdb_changes_since_last_save:")[1].split()[0])

    with RawConn(follower) as r:
        before = dirty(r)
        for i in range(ROUNDS):
            r.cmd("SET", "ryw:dirty:%d" % i, "v")
            assert dirty(r) == before + i + 1, "round %d" % i


def test_config_get_sees_its_own_config_set(follower):
    """An encoding threshold is replicated state: CONFIG SET through the follower is applied by
    every partition's leader, and CONFIG GET answers from the follower's replica, which must
    have applied it."""
    with RawConn(follower) as r:
        for i in range(ROUNDS):
            value = str(100 + i)
            assert r.cmd("CONFIG", "SET", "hash-max-listpack-entries", value) == "OK"
            assert r.cmd("CONFIG", "GET", "hash-max-listpack-entries") == [
                b"hash-max-listpack-entries", value.encode()], "round %d" % i


def test_pop_beaten_on_the_leader_waits_again(follower):
    """Two clients of the follower wait on one list; one element comes. Both are forwarded when
    the follower's replica shows it, the leader gives it to the first and answers the second's
    pop null: that null is not the second client's answer (only a timeout answers null, as in
    Redis): it waits again and gets the next element."""
    with RawConn(follower, timeout=20) as a, RawConn(follower, timeout=20) as b, \
            RawConn(follower) as r:
        a.send(a.encode("BLPOP", "ryw:race", 0))
        wait_for(lambda: b"blocked_clients:1" in r.cmd("INFO", "clients"), 10, "a to block")
        b.send(b.encode("BLPOP", "ryw:race", 0))
        wait_for(lambda: b"blocked_clients:2" in r.cmd("INFO", "clients"), 10, "b to block")
        assert r.cmd("RPUSH", "ryw:race", "x1") == 1
        assert a.read() == [b"ryw:race", b"x1"]
        r.cmd("RPUSH", "ryw:race", "x2")
        assert b.read() == [b"ryw:race", b"x2"]


def test_errorstats_count_the_errors_a_follower_answered(follower):
    """INFO errorstats counts the error replies the node gave its clients, as Redis's does:
    a script's error that the leader ran and the follower passed on is counted on the
    follower too (scripting's "LUA redis.error_reply API" reads it there)."""
    with RawConn(follower) as r:
        assert r.cmd("CONFIG", "RESETSTAT") == "OK"
        for i in range(3):
            reply = r.cmd("EVAL", "return redis.error_reply('RYW_CODE custom msg')", 0)
            assert isinstance(reply, RespError) and str(reply) == "RYW_CODE custom msg"
            stats = r.cmd("INFO", "errorstats").decode()
            assert "errorstat_RYW_CODE:count=%d" % (i + 1) in stats, stats


def test_follower_over_its_own_maxmemory_refuses_writes(follower):
    """maxmemory is each node's own limit (as in Redis Cluster): a follower over it with
    noeviction answers -OOM to a write (and to a script that may write) its client sends,
    rather than forward it; under it again, the same write goes through."""
    with RawConn(follower) as r:
        assert r.cmd("CONFIG", "SET", "maxmemory", "1") == "OK"
        try:
            for cmd in (("SET", "ryw:oom", "v"), ("EVAL", "#!lua\nreturn 1", 0)):
                reply = r.cmd(*cmd)
                assert isinstance(reply, RespError) and str(reply).startswith("OOM "), reply
        finally:
            assert r.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
        assert r.cmd("SET", "ryw:oom", "v") == "OK"
        assert r.cmd("EVAL", "#!lua\nreturn 1", 0) == 1

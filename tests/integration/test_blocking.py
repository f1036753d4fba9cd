"""Blocking list and sorted-set commands (issue 13): BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP,
BZPOPMIN, BZPOPMAX, BZMPOP. A blocked client is served when its key gets data, by a replicated
pop; every element goes to exactly one client; a timeout answers Redis's null; inside MULTI
they never block; a client blocked on a follower of a 3-node cluster is served through the
leader."""

import threading
import time

import pytest
import redis

from cluster import Cluster
from conftest import RawConn, wait_for


def test_immediate_forms_and_errors(raw):
    """With data they answer at once, in Redis's shapes; errors as Redis words them."""
    raw.cmd("RPUSH", "l", "a", "b")
    assert raw.cmd("BLPOP", "none", "l", 1) == [b"l", b"a"]
    assert raw.cmd("BRPOP", "l", 1) == [b"l", b"b"]
    raw.cmd("ZADD", "z", 1, "m", 2, "n")
    assert raw.cmd("BZPOPMIN", "z", 1) == [b"z", b"m", b"1"]
    assert raw.cmd("BZPOPMAX", "z", 1) == [b"z", b"n", b"2"]
    raw.cmd("RPUSH", "s", "1", "2")
    assert raw.cmd("BLMOVE", "s", "d", "LEFT", "RIGHT", 1) == b"1"
    assert raw.cmd("BRPOPLPUSH", "s", "d", 1) == b"2"
    assert raw.cmd("BLMPOP", 1, 2, "x", "d", "RIGHT", "COUNT", 5) == [b"d", [b"1", b"2"]]
    raw.cmd("ZADD", "z", 1, "a", 2, "b")
    assert raw.cmd("BZMPOP", 1, 1, "z", "MAX", "COUNT", 2) == [b"z", [[b"b", b"2"], [b"a", b"1"]]]
    assert raw.cmd("BLPOP", "l", -1) == "ERR timeout is negative"
    assert raw.cmd("BLPOP", "l", "x") == "ERR timeout is not a float or out of range"
    assert raw.cmd("BLMPOP", 1, 0, "l", "LEFT") == "ERR numkeys should be greater than 0"
    # The whole syntax is checked before blocking (no wait on an empty key).
    assert raw.cmd("BZMPOP", 5, 1, "empty", "bad_where") == "ERR syntax error"
    assert raw.cmd("BLMPOP", 5, 1, "empty", "LEFT", "COUNT", 0) == "ERR count should be greater than 0"
    assert raw.cmd("BLMPOP", 5, 1, "empty", "LEFT", "COUNT") == "ERR syntax error"
    raw.cmd("SET", "str", "v")
    assert raw.cmd("BLPOP", "str", 1).startswith("WRONGTYPE")


def test_timeout_answers_null(raw):
    """Nothing arrives: a null array (a null bulk for BLMOVE) after about the timeout, and the
    connection goes on with its next request."""
    t = time.monotonic()
    raw.send(raw.encode("BLPOP", "empty", "0.2") + raw.encode("PING"))
    assert raw.read() is None
    assert time.monotonic() - t >= 0.19
    assert raw.read() == "PONG"
    assert raw.cmd("BLMOVE", "empty", "d", "LEFT", "LEFT", "0.1") is None
    assert raw.cmd("BZPOPMIN", "empty", "0.1") is None


def test_waiters_each_get_one_element(srv):
    """Eight clients block on two lists; twenty elements pushed in several writes go to the
    waiters one each, none twice, none lost (what is not taken stays in the lists)."""
    got, errors = [], []

    def waiter():
        try:
            r = srv.client()
            while True:
                v = r.blpop(["q1", "q2"], 3)
                if v is None:
                    break
                got.append(v[1])
            r.close()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for t in threads:
        t.start()
    r = srv.client()
    wait_for(lambda: r.execute_command("CLIENT", "LIST").count("cmd=blpop") == 8, 5,
             "the eight waiters to block")
    for k in range(10):
        r.rpush("q1" if k % 2 else "q2", "a%d" % k, "b%d" % k)
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(got) == sorted(["a%d" % k for k in range(10)] + ["b%d" % k for k in range(10)])
    assert r.llen("q1") == 0 and r.llen("q2") == 0
    r.close()


def test_blocking_inside_multi_does_not_block(raw):
    """Redis 7.0: inside MULTI a blocking command answers as its timeout would."""
    raw.cmd("MULTI")
    raw.cmd("BLPOP", "none", 0)
    raw.cmd("RPUSH", "none", "x")
    raw.cmd("BLPOP", "none", 0)
    assert raw.cmd("EXEC") == [None, 1, [b"none", b"x"]]


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, "\n".join(errors)


def test_follower_client_served_through_leader(cluster):
    """A client blocked on a follower is served when a client of the leader pushes; the pop
    is replicated (every replica loses the element)."""
    lead = cluster.leader()
    follower = next(i for i in range(3) if i != lead)
    with RawConn(cluster.ports[follower], timeout=20) as f, RawConn(cluster.ports[lead]) as l:
        f.send(f.encode("BLPOP", "jobs", 10))
        with RawConn(cluster.ports[follower]) as probe:
            wait_for(lambda: b"cmd=blpop" in probe.cmd("CLIENT", "LIST"), 5,
                     "the client to block on the follower")
        assert l.cmd("RPUSH", "jobs", "j1") == 1
        assert f.read() == [b"jobs", b"j1"]
        for port in cluster.ports:
            with RawConn(port) as c:
                c.cmd("READONLY")
                wait_for(lambda: c.cmd("LLEN", "jobs") == 0, 10, "the pop on %d" % port)


def test_blocked_client_ignores_keys_of_another_type(srv):
    """Once blocked, a key turned into another type does not wake it with WRONGTYPE (Redis
    serves blocked clients from keys of their type only); the next push does."""
    with srv.raw() as b, srv.raw() as w:
        b.send(b.encode("BLPOP", "k", 10))
        wait_for(lambda: b"blocked_clients:1" in w.cmd("INFO", "clients"), 5, "the client to block")
        assert w.cmd("SET", "k", "string") == "OK"
        assert w.cmd("DEL", "k") == 1
        assert w.cmd("RPUSH", "k", "v") == 1
        assert b.read() == [b"k", b"v"]


def test_oldest_waiter_served_first(srv):
    """Blocked clients are served in the order they blocked, as Redis does: the first one's BRPOPLPUSH into
    a string answers WRONGTYPE and leaves the element for the second."""
    # rd2 connects first, rd1 blocks first: the order of blocking is what counts.
    with srv.raw() as rd2, srv.raw() as rd1, srv.raw() as w:
        w.cmd("SET", "target1", "nolist")
        rd1.send(rd1.encode("BRPOPLPUSH", "blist", "target1", 0))
        wait_for(lambda: b"blocked_clients:1" in w.cmd("INFO", "clients"), 5, "rd1 to block")
        rd2.send(rd2.encode("BRPOPLPUSH", "blist", "target2", 0))
        wait_for(lambda: b"blocked_clients:2" in w.cmd("INFO", "clients"), 5, "rd2 to block")
        w.cmd("LPUSH", "blist", "foo")
        assert rd1.read().startswith("WRONGTYPE")
        assert rd2.read() == b"foo"
        assert w.cmd("LRANGE", "target2", 0, -1) == [b"foo"]


def test_client_unblock(srv):
    """CLIENT UNBLOCK answers a waiting client with its timeout's null, or -UNBLOCKED with
    ERROR; 1 when it was blocked, 0 otherwise."""
    with srv.raw() as b, srv.raw() as w:
        bid = b.cmd("CLIENT", "ID")
        b.send(b.encode("BLPOP", "k", 0))
        wait_for(lambda: b"blocked_clients:1" in w.cmd("INFO", "clients"), 5, "the client to block")
        assert w.cmd("CLIENT", "UNBLOCK", bid) == 1
        assert b.read() is None
        assert w.cmd("CLIENT", "UNBLOCK", bid) == 0
        b.send(b.encode("BZPOPMIN", "z", 0))
        wait_for(lambda: b"blocked_clients:1" in w.cmd("INFO", "clients"), 5, "the client to block")
        assert w.cmd("CLIENT", "UNBLOCK", bid, "ERROR") == 1
        assert b.read() == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
        assert b.cmd("PING") == "PONG"


def test_push_is_answered_after_the_pops_it_fed(srv):
    """Redis serves the clients blocked on a key before it answers the push (its "Linked
    LMOVEs" and "PUSH resulting from BRPOPLPUSH affect WATCH"): here each woken pop is an entry
    of its own, so the push's reply waits until they applied. Once RPUSH list1 answers, a chain
    of two BLMOVEs has moved the element on to list3, read on the same connection and piped
    right behind the push; and a WATCH of the list a BRPOPLPUSH filled aborts the EXEC sent
    after the push's reply. Several rounds: a reply sent before the pops (the bug) is caught by
    most of them, not by all."""
    check_push_answered_after_pops(srv.raw)


def test_push_through_a_follower_is_answered_after_the_pops_it_fed(cluster):
    """The same through a follower, whose blocked clients wait on its replica and whose pops
    and push all go to the leader: the push's reply, back from the leader, waits on the
    follower until its replica applied the push and the pops it woke there were answered."""
    follower = (cluster.leader() + 1) % 3
    check_push_answered_after_pops(lambda: RawConn(cluster.ports[follower], timeout=20))


def check_push_answered_after_pops(connect):
    with connect() as rd1, connect() as rd2, connect() as wc, connect() as r:
        for i in range(6):
            l1, l2, l3 = "{c%d}:1" % i, "{c%d}:2" % i, "{c%d}:3" % i
            rd1.send(rd1.encode("BLMOVE", l1, l2, "RIGHT", "LEFT", 0))
            wait_for(lambda: b"blocked_clients:1" in r.cmd("INFO", "clients"), 5, "rd1 to block")
            rd2.send(rd2.encode("BLMOVE", l2, l3, "LEFT", "RIGHT", 0))
            wait_for(lambda: b"blocked_clients:2" in r.cmd("INFO", "clients"), 5, "rd2 to block")
            r.send(r.encode("RPUSH", l1, "foo") + r.encode("LRANGE", l3, 0, -1))
            assert r.read() == 1
            assert r.read() == [b"foo"], "round %d: the pops had not applied" % i
            assert r.cmd("LRANGE", l1, 0, -1) == []
            assert r.cmd("LRANGE", l2, 0, -1) == []
            assert rd1.read() == b"foo" and rd2.read() == b"foo"

            src, dst = "{w%d}:src" % i, "{w%d}:dst" % i
            r.cmd("SET", "{w%d}:key" % i, "v")
            rd1.send(rd1.encode("BRPOPLPUSH", src, dst, 0))
            wait_for(lambda: b"blocked_clients:1" in r.cmd("INFO", "clients"), 5, "rd1 to block")
            assert wc.cmd("WATCH", dst) == "OK"
            assert wc.cmd("MULTI") == "OK"
            assert wc.cmd("GET", "{w%d}:key" % i) == "QUEUED"
            assert r.cmd("LPUSH", src, "element") == 1
            assert wc.cmd("EXEC") is None, "round %d: the watched list changed" % i
            assert rd1.read() == b"element"


def test_push_through_a_follower_waits_for_pops_on_the_leader(cluster):
    """Clients blocked on the leader, the push sent to a follower: the leader holds its reply
    to the forward until the pops it fed (a chain of two BLMOVEs) applied, so the follower's
    client, answered, reads the element at the end of the chain (piped behind the push)."""
    lead = cluster.leader()
    follower = (lead + 1) % 3
    with RawConn(cluster.ports[lead], timeout=20) as rd1, \
            RawConn(cluster.ports[lead], timeout=20) as rd2, \
            RawConn(cluster.ports[lead]) as probe, RawConn(cluster.ports[follower]) as r:
        for i in range(6):
            l1, l2, l3 = "{f%d}:1" % i, "{f%d}:2" % i, "{f%d}:3" % i
            rd1.send(rd1.encode("BLMOVE", l1, l2, "RIGHT", "LEFT", 0))
            wait_for(lambda: b"blocked_clients:1" in probe.cmd("INFO", "clients"), 5,
                     "rd1 to block")
            rd2.send(rd2.encode("BLMOVE", l2, l3, "LEFT", "RIGHT", 0))
            wait_for(lambda: b"blocked_clients:2" in probe.cmd("INFO", "clients"), 5,
                     "rd2 to block")
            r.send(r.encode("RPUSH", l1, "foo") + r.encode("LRANGE", l3, 0, -1))
            assert r.read() == 1
            assert r.read() == [b"foo"], "round %d: the pops had not applied" % i
            assert rd1.read() == b"foo" and rd2.read() == b"foo"


def test_exec_through_a_follower_is_answered_after_the_pop_it_fed(cluster):
    """EXEC names no keys of its own (the command table has no key columns for it), so a
    follower holds its reply whenever one of its clients waits in the partition: once the
    transaction that pushed is answered, the follower's blocked BLMOVE has moved the element,
    read right behind the EXEC."""
    follower = (cluster.leader() + 1) % 3
    with RawConn(cluster.ports[follower], timeout=20) as rd, \
            RawConn(cluster.ports[follower]) as r:
        for i in range(6):
            src, dst = "{x%d}:src" % i, "{x%d}:dst" % i
            rd.send(rd.encode("BLMOVE", src, dst, "LEFT", "RIGHT", 0))
            wait_for(lambda: b"blocked_clients:1" in r.cmd("INFO", "clients"), 5, "rd to block")
            assert r.cmd("MULTI") == "OK"
            assert r.cmd("RPUSH", src, "e") == "QUEUED"
            r.send(r.encode("EXEC") + r.encode("LRANGE", dst, 0, -1))
            assert r.read() == [1]
            assert r.read() == [b"e"], "round %d: the pop had not applied" % i
            assert rd.read() == b"e"

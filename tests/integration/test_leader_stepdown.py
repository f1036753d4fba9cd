"""A leader that loses its leadership with writes proposed and not yet committed tells each
client the write's real fate once the next leader's entries reach it, instead of -UNKNOWN at
the step-down: the reply of a write that committed anyway (the followers had it), and
"-TRYAGAIN ... not applied" for one whose index the next leader committed with an entry of its
own (never applied, safe to send again; an entry merely replaced in the old leader's log may
still be committed by a later leader that holds it, so that alone decides nothing). -UNKNOWN is left for a node that learns nothing within a few election timeouts
(cut off from the next leader).

Each test cuts links with the proxies of fault_proxy, so that the write is pending on the
leader for sure when leadership changes; request-timeout-ms is 60 s so that no request deadline
interferes. No timing is asserted."""

import signal

from cluster import info
from conftest import RawConn, wait_for
from fault_proxy import ProxiedCluster

# Election timeouts of 1 s: a deposed leader waits a few of them to learn a write's fate, and
# the test heals the links within that time after the step-down it sees.
EXTRA = {"request-timeout-ms": 60000, "election-timeout-ms": 1000}


def _cluster(tmp_path_factory):
    c = ProxiedCluster(tmp_path_factory, 3, dict(EXTRA))
    c.start_all()
    return c


def _leader(c):
    """The leader's index and the followers', once it has committed a first write."""
    li = c.leader(30)
    with RawConn(c.ports[li]) as l:
        assert l.cmd("SET", "before", "1") == "OK"
    return li, [i for i in range(3) if i != li]


def _stop(c):
    errors = c.stop_all()
    assert not errors, errors


def test_write_replaced_by_the_next_leader_is_not_applied(tmp_path_factory):
    """The leader's messages to both followers are lost (its outbound links cut): a write sent
    to it right then reaches no follower. The followers elect a leader among themselves, whose
    first entry takes the write's index and commits; the old leader hears them (its inbound
    links work), steps down, applies that entry where its write was: its client gets -TRYAGAIN
    "not applied" and the key was never written."""
    c = _cluster(tmp_path_factory)
    try:
        li, others = _leader(c)
        with RawConn(c.ports[li], timeout=60) as l:
            for f in others:
                c.net.block(li, f)
            l.send(l.encode("SET", "lost", "x"))
            new = c.leader(30, exclude=(li,))
            reply = l.read()
            assert str(reply).startswith("TRYAGAIN") and "not applied" in str(reply), reply
        c.net.heal()
        with RawConn(c.ports[new]) as n:
            assert n.cmd("GET", "before") == b"1"
            assert n.cmd("GET", "lost") is None
            assert n.cmd("SET", "after", "2") == "OK"
        # The old leader's replica agrees once it catches up.
        def replica(i, key):
            with RawConn(c.ports[i]) as r:
                assert r.cmd("READONLY") == "OK"
                return r.cmd("GET", key)
        wait_for(lambda: replica(li, "after") == b"2", 30, "the old leader to catch up")
        assert replica(li, "lost") is None
    finally:
        _stop(c)


def test_write_committed_by_the_next_leader_gets_its_reply(tmp_path_factory):
    """The followers' messages to the leader are lost (its inbound links cut): a write sent to
    it reaches both followers, but their acknowledgements do not come back, so it cannot commit.
    The leader is frozen (SIGSTOP) once the followers hold the write; they elect a leader among
    themselves, which commits it. The old leader resumes, still deaf, and steps down for want of
    acknowledgements; then the links heal: it learns of the new term and the commit, applies the
    write as a follower, and its client gets the write's own reply, as if nothing had happened.
    (Learning the fate in the same step as the step-down always gave the reply.)"""
    c = _cluster(tmp_path_factory)
    try:
        li, others = _leader(c)
        last = int(info(c.ports[li])["raft_last_index"])
        wait_for(lambda: all(int(info(c.ports[f])["raft_commit_index"]) >= last for f in others),
                 30, "the followers to commit what the leader has")
        with RawConn(c.ports[li], timeout=60) as l:
            for f in others:
                c.net.block(f, li)
            l.send(l.encode("INCRBY", "counter", "5"))
            # The write is in the leader's log once its connection ran it (CLIENT LIST's cmd);
            # the followers hold it once they hold all the leader's log from then (an internal
            # entry may come first: a count of one more entry would not say it is the write).
            with RawConn(c.ports[li]) as probe:
                wait_for(lambda: b"cmd=incrby" in probe.cmd("CLIENT", "LIST"), 30,
                         "the leader to run the write")
            target = int(info(c.ports[li])["raft_last_index"])
            assert target > last
            wait_for(lambda: all(int(info(c.ports[f])["raft_last_index"]) >= target
                                 for f in others), 30, "the followers to hold the write")
            c.kill(li, signal.SIGSTOP)
            try:
                new = c.leader(30, exclude=(li,))
                with RawConn(c.ports[new]) as n:
                    assert n.cmd("GET", "counter") == b"5"  # committed by the new leader
            finally:
                c.kill(li, signal.SIGCONT)
            # Resumed, still deaf to the others: it steps down for want of acknowledgements
            # before it can learn anything. Only then the links heal.
            wait_for(lambda: c.role(li)[0] != "leader", 30, "the old leader to step down")
            c.net.heal()
            assert l.read() == 5
        with RawConn(c.ports[new]) as n:
            assert n.cmd("INCRBY", "counter", "1") == 6  # applied once
    finally:
        _stop(c)

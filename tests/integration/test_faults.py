"""Fault tests: a concurrent SET/GET/INCR workload runs while real faults hit a real cluster
(kill -9, SIGSTOP, network partitions and one-way loss through proxies, rolling restarts);
after healing, the whole history must be linearizable, every acknowledged write readable,
and every replica must hold the same values (workload.verify)."""

import os
import signal
import time

import pytest

from cluster import Cluster, ClusterSet, info
from conftest import RawConn, wait_for
from fault_proxy import ProxiedCluster
from lincheck import OK
from workload import Workload, verify, wait_converged

pytestmark = pytest.mark.halyard_only

# Short enough that a request on a node without a leader gets -TRYAGAIN before the client's
# 2 s socket timeout, so definite failures are exercised as well as indeterminate ones.
EXTRA = {"request-timeout-ms": 1000}
ELECTION_TIMEOUT_S = 0.3  # the default --election-timeout-ms
SEED = int(os.environ.get("HY_FAULT_SEED", "1"))


@pytest.fixture
def make_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, proxied=False, extra=None):
        return clusters.start(ProxiedCluster if proxied else Cluster, n, dict(EXTRA, **(extra or {})))

    yield make
    clusters.stop_all()


def restart(c, i):
    """Starts node i again, keeping the log of its previous life beside the new one."""
    log = os.path.join(c.dir, "w%d" % i, "server.log")
    k = 1
    while os.path.exists("%s.%d" % (log, k)):
        k += 1
    if os.path.exists(log):
        os.rename(log, "%s.%d" % (log, k))
    return c.start(i)


def wait_follows_and_caught_up(c, i, deadline_s=20):
    """Waits until node i follows the current leader and has applied its commit index."""
    li = c.leader(deadline_s=deadline_s, exclude=(i,))
    commit = int(info(c.ports[li])["raft_commit_index"])

    def check():
        r = info(c.ports[i])
        return r["raft_role"] == "follower" and int(r["raft_applied_index"]) >= commit

    wait_for(check, deadline_s, "%s to follow and apply index %d" % (c.names[i], commit))


def lease_s(c):
    """How long after a cut a leader may still serve reads from its lease (lease-ms, plus the
    5% clock drift the lease allows for); 0 without leases. Its lease was last renewed by a
    heartbeat round sent before the cut, so it ends within this long of the cut."""
    return int(c.extra.get("lease-ms", 0)) * 1.05 / 1000.0


def not_acked_on(wl, ports, t_from, t_to, reads_from=None):
    """The ops sent to `ports` invoked after t_from (reads: after reads_from, default t_from)
    that completed with success before t_to (a minority must have none), and a tally of what
    those nodes answered instead."""
    acked, answers = [], {}
    for o in wl.history + wl.ledger():
        start = t_from if o.kind != "get" or reads_from is None else reads_from
        if o.node not in ports or o.invoke < start or o.invoke > t_to:
            continue
        if o.status == OK and o.complete <= t_to:
            acked.append(o)
        else:
            what = (o.err or "").split(" ")[0] or o.status
            answers[what] = answers.get(what, 0) + 1
    return acked, answers


def report(name, c, summary, **more):
    summary = dict(summary, **more)
    print("\n%s seed=%d nodes=%d: %s\n  logs: %s" % (name, SEED, len(c.ports), summary, c.dir))


# ---- a. kill -9 -------------------------------------------------------------------------------


def kill_leader_rounds(c, wl, rounds, extra_victims=0):
    for r in range(rounds):
        li = c.leader()
        term = c.term(li)
        victims = [li] + [(li + 1 + k) % len(c.ports) for k in range(extra_victims)]
        for v in victims:
            c.kill(v, signal.SIGKILL)
        ni = c.leader(deadline_s=15, exclude=victims)
        assert c.term(ni) > term, "round %d: %s leads in term %d, as before the kill" % (r, c.names[ni], term)
        wl.wait_progress(100, 20, "writes acknowledged after kill -9 round %d" % r)
        for v in victims:
            restart(c, v)
        for v in victims:
            wait_follows_and_caught_up(c, v)


def test_kill9_leader_repeatedly_under_load(make_cluster):
    """Four rounds of kill -9 of the leader (restarted each time) lose no acknowledged write and
    keep the history linearizable."""
    c = make_cluster(3)
    c.leader()
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        kill_leader_rounds(c, wl, 4)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("kill9x4", c, verify(c, wl))


def test_kill9_leader_and_a_follower_in_a_five_node_cluster(make_cluster):
    """Five nodes survive three rounds of kill -9 of the leader plus one follower (two of five
    down at once), linearizably and without losing acknowledged writes."""
    c = make_cluster(5)
    c.leader()
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        kill_leader_rounds(c, wl, 3, extra_victims=1)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("kill9x3-5nodes", c, verify(c, wl))


# `durability: replicated` with a long interval: every write the test makes is acknowledged
# before any fdatasync of it, so the kills hit writes that only the page cache holds.
REPLICATED = {"durability": "replicated", "fsync-interval-ms": 10000}


def test_replicated_kill9_leader_then_a_follower_loses_nothing(make_cluster):
    """In `durability: replicated`, kill -9 of the leader, then of a follower (a minority each
    time, restarted) loses no acknowledged write and keeps the history linearizable: the page
    cache keeps what the killed process wrote. INFO and CONFIG GET show the mode."""
    c = make_cluster(3, extra=REPLICATED)
    li = c.leader()
    for port in c.ports:
        p = info(port, "persistence")
        assert p["durability"] == "replicated" and p["fsync_interval_ms"] == "10000", p
        with RawConn(port) as conn:
            assert conn.cmd("CONFIG", "GET", "durability") == [b"durability", b"replicated"]
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        kill_leader_rounds(c, wl, 1)
        li = c.leader()
        f = (li + 1) % len(c.ports)
        c.kill(f, signal.SIGKILL)
        wl.wait_progress(100, 20, "writes acknowledged with a follower killed")
        restart(c, f)
        wait_follows_and_caught_up(c, f)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("replicated-kill9", c, verify(c, wl))


# ---- b. SIGSTOP -------------------------------------------------------------------------------


def test_sigstopped_leader_steps_down_and_never_double_acknowledges(make_cluster):
    """A leader frozen for three election timeouts is replaced, steps down after SIGCONT, and
    no write is acknowledged by both leaders (the history stays linearizable)."""
    c = make_cluster(3)
    c.leader()
    # Pinned clients keep requests queued at every node, the frozen leader included, so that
    # whatever it answers after SIGCONT is seen.
    wl = Workload(c.ports, seed=SEED, pinned=c.ports).start()
    stepped_down = []
    try:
        wl.wait_progress(200, 15)
        for r in range(3):
            li = c.leader()
            term = c.term(li)
            t0 = time.monotonic()
            c.kill(li, signal.SIGSTOP)
            try:
                ni = c.leader(deadline_s=15, exclude=(li,))
                assert c.term(ni) > term
                # The fault itself: stay frozen for at least three election timeouts.
                left = 3 * ELECTION_TIMEOUT_S - (time.monotonic() - t0)
                if left > 0:
                    time.sleep(left)
            finally:
                c.kill(li, signal.SIGCONT)
            wait_for(lambda: c.role(li)[0] == "follower", 15, "the old leader to step down")
            stepped_down.append(c.names[li])
            wl.wait_progress(100, 15, "writes acknowledged after SIGCONT")
    finally:
        wl.stop()
    report("sigstop x3", c, verify(c, wl), stepped_down=stepped_down)


# ---- c. partitions ----------------------------------------------------------------------------


def partition_round(c, wl, minority, majority, mode="stall", hold_s=3.0):
    """Cuts minority from majority, checks the majority goes on while every minority node
    answers -NOQUORUM and acknowledges nothing, heals and waits for convergence. Returns what
    the minority answered."""
    old = c.leader()
    old_term = c.term(old)
    c.net.partition(minority, mode=mode)
    # partition() returns once every link between the sides is cut and no chunk is on its
    # way across (fault_proxy's gate): a write invoked from then on must not be acknowledged
    # by the minority. A read may still be served from a lease renewed before the cut, until
    # that lease ends.
    t_cut = time.monotonic()
    t_reads = t_cut + lease_s(c)
    try:
        li = c.leader(deadline_s=15, exclude=minority)
        if old in minority:
            assert c.term(li) > old_term, "%s leads the majority in term %d, as before the cut" % (c.names[li], old_term)
        else:
            # Pre-vote and check-quorum: a leader that keeps its majority keeps leading.
            assert (li, c.term(li)) == (old, old_term), (c.names[li], c.term(li), c.names[old], old_term)
        maj_ports = [c.ports[i] for i in majority]
        wl.wait_progress(100, 20, "writes acknowledged by the majority", ports=maj_ports)
        for i in minority:
            wait_for(lambda: wl.count(lambda o: o.node == c.ports[i] and o.invoke >= t_cut
                                      and (o.err or "").startswith("NOQUORUM")), 20,
                     "%s, cut off in a minority, to answer -NOQUORUM" % c.names[i])
        # Hold the partition long enough that requests on the minority run out their
        # request timeout (1 s) and a client timeout (2 s): the fault's duration.
        left = hold_s - (time.monotonic() - t_cut)
        if left > 0:
            time.sleep(left)
        t_heal = time.monotonic()
    finally:
        c.net.heal()
    acked, answers = not_acked_on(wl, [c.ports[i] for i in minority], t_cut, t_heal, reads_from=t_reads)
    assert not acked, "the minority %s acknowledged %d ops while cut off, e.g. %r" % (
        [c.names[i] for i in minority], len(acked), acked[:5])
    assert sum(answers.values()) > 0, "no request reached the minority: the check above proves nothing"
    wait_converged(c)
    if old in majority:
        # Pre-vote: a rejoining minority cannot depose a leader that kept its majority.
        li = c.leader()
        term = c.term(li)
        assert (li, term) == (old, old_term), "leader %s term %d before the cut, %s term %d after healing" % (
            c.names[old], old_term, c.names[li], term)
    return answers


def test_partition_isolating_the_leader_3_nodes(make_cluster):
    """3 nodes: the isolated leader acknowledges nothing, the other two elect a leader and go
    on, and after healing all converge with a linearizable history (stall, then drop)."""
    c = make_cluster(3, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    answers = []
    try:
        wl.wait_progress(200, 15)
        for mode in ("stall", "drop"):
            li = c.leader()
            others = [i for i in range(3) if i != li]
            answers.append(partition_round(c, wl, [li], others, mode=mode))
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("partition leader isolated (3)", c, verify(c, wl), minority_answers=answers)


def test_partition_isolating_a_follower_3_nodes(make_cluster):
    """3 nodes, 2/1 split with the leader in the majority: writes go on, the cut-off follower
    acknowledges nothing and, on rejoining, does not depose the leader."""
    c = make_cluster(3, proxied=True)
    li = c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    try:
        wl.wait_progress(200, 15)
        f = (li + 1) % 3
        answers = partition_round(c, wl, [f], [li, (li + 2) % 3])
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("partition follower isolated (3)", c, verify(c, wl), minority_answers=answers)


def test_partition_3_2_splits_5_nodes(make_cluster):
    """5 nodes, 3/2 splits: with the leader in the minority, then in the majority; the two
    acknowledge nothing, the three go on, healing converges."""
    c = make_cluster(5, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    answers = []
    try:
        wl.wait_progress(200, 15)
        li = c.leader()
        minority = [li, (li + 1) % 5]
        answers.append(partition_round(c, wl, minority, [i for i in range(5) if i not in minority]))
        li = c.leader()
        minority = [(li + 1) % 5, (li + 2) % 5]
        answers.append(partition_round(c, wl, minority, [i for i in range(5) if i not in minority]))
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("partition 3/2 (5)", c, verify(c, wl), minority_answers=answers)


def test_one_way_loss_around_the_leader_3_nodes(make_cluster):
    """3 nodes: when the leader's messages are lost (it still hears the others), and then when
    it hears nothing (its messages still arrive), a new leader takes over, no write is
    acknowledged twice, and healing converges."""
    c = make_cluster(3, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    seen = []
    try:
        wl.wait_progress(200, 15)
        for direction in ("out", "in"):
            li = c.leader()
            term = c.term(li)
            others = [i for i in range(3) if i != li]
            for o in others:
                if direction == "out":
                    c.net.block(li, o)
                else:
                    c.net.block(o, li)
            try:
                ni = c.leader(deadline_s=15, exclude=(li,))
                assert c.term(ni) > term
                wl.wait_progress(100, 20, "writes acknowledged by the new leader",
                                 ports=[c.ports[i] for i in others])
                # The old leader must not lead any more (a leader that hears nobody steps down
                # by check-quorum; one that hears the new term follows it).
                wait_for(lambda: c.role(li)[0] != "leader", 15, "the old leader to stop leading")
                seen.append((direction, c.names[li], c.role(li)[0]))
            finally:
                c.net.heal()
            wait_converged(c)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("one-way loss (3)", c, verify(c, wl), old_leader_roles=seen)


# ---- the checks can fail ---------------------------------------------------------------------


def test_checks_reject_stale_reads_from_a_cut_off_follower(make_cluster):
    """The end-to-end check can fail: READONLY reads from a follower that no longer hears the
    leader return overwritten values, and verify() rejects that history."""
    c = make_cluster(3, proxied=True)
    li = c.leader()
    f = (li + 1) % 3
    wl = Workload(c.ports, seed=SEED, readonly=[c.ports[f]], addr_map=c.moved_map()).start()
    try:
        wl.wait_progress(200, 15)
        c.net.block(li, f)  # the follower stops receiving entries and commit indexes
        try:
            wl.wait_progress(200, 15, "writes acknowledged after the cut", ports=[c.ports[li]])
            t = time.monotonic()
            wait_for(lambda: wl.count(lambda o: o.client >= 8 and o.status == OK and o.invoke > t) >= 50, 15,
                     "READONLY reads on the cut-off follower")
        finally:
            c.net.heal()
    finally:
        wl.stop()
    with pytest.raises(AssertionError, match="NOT linearizable") as e:
        verify(c, wl)
    print("\nrejected as expected: %s" % str(e.value)[:1500])


# ---- d. rolling restart -----------------------------------------------------------------------


def test_rolling_restart_under_load(make_cluster):
    """Every node in turn is stopped with SIGTERM (clean exit), restarted and caught up while
    the workload runs; nothing acknowledged is lost and the history is linearizable."""
    c = make_cluster(3)
    c.leader()
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        for i in range(3):
            c.nodes[i].stop()  # SIGTERM; asserts exit code 0
            wl.wait_progress(50, 20, "writes acknowledged while %s is down" % c.names[i])
            restart(c, i)
            wait_follows_and_caught_up(c, i)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("rolling restart (3)", c, verify(c, wl))

"""More fault tests (issue 5), built like test_faults.py: a concurrent SET/GET/INCR workload
runs on a real cluster while faults hit it; after healing the whole history must be
linearizable, every acknowledged write readable, and every replica must hold the same values
(workload.verify).

  - the whole cluster (3 and 5 nodes) killed with SIGKILL at once, four times, and restarted;
  - five-node versions of the faults test_faults.py runs on three nodes: the leader isolated
    by a partition, one-way loss around the leader, a SIGSTOPped leader, a rolling restart,
    and kill -9 of the leader again and again (parametrized by node count: add 3 or 7 to
    `SIZES` to run them on other sizes);
  - an extra process started with a wrong --cluster-secret beside a running cluster (and a
    member restarted in place with a wrong secret) is refused, says why in its log and in the
    members' logs, never leads, never gets data, and the cluster goes on serving
    linearizably.

HY_FAULT_SEED picks the workload's seed (and the order of the kills), as in test_faults.py.
"""

import os
import random
import signal
import time

import pytest

from cluster import free_port_pair, info
from conftest import RawConn, Server, wait_for
from lincheck import OK
import test_faults
from test_faults import (
    ELECTION_TIMEOUT_S,
    EXTRA,
    SEED,
    kill_leader_rounds,
    lease_s,
    not_acked_on,
    report,
    restart,
    wait_follows_and_caught_up,
)
from workload import Workload, verify

pytestmark = pytest.mark.halyard_only

make_cluster = test_faults.make_cluster  # the fixture (tests take it by name)

SIZES = [5]


# ---- 1. the whole cluster crashes at once ----------------------------------------------------


def crash_all(c, rng):
    """SIGKILL to every node back to back (in a seeded order), then reap them all."""
    order = list(range(len(c.nodes)))
    rng.shuffle(order)
    for i in order:
        c.nodes[i].send_signal(signal.SIGKILL)
    for i in order:
        s = c.nodes[i]
        assert s.wait_exit() == -signal.SIGKILL, "%s: exit status %r" % (c.names[i], s.proc.returncode)
        s._stopped = True
        s.log.close()
    return [c.names[i] for i in order]


def restart_all(c):
    """Starts every node again together (each keeps its previous logs as server.log.N), then
    waits until all of them answer."""
    for i in range(len(c.nodes)):
        log = os.path.join(c.dir, "w%d" % i, "server.log")
        k = 1
        while os.path.exists("%s.%d" % (log, k)):
            k += 1
        os.rename(log, "%s.%d" % (log, k))
        c.nodes[i] = Server(c.argv(i), c.ports[i], os.path.join(c.dir, "w%d" % i))
    for s in c.nodes:
        s.wait_ready()


@pytest.mark.parametrize("n", [3] + SIZES)
def test_whole_cluster_kill9_and_restart_under_load(make_cluster, n):
    """Four times, every node of the cluster is killed with SIGKILL at once while the workload
    runs, and all are restarted together: a leader is elected, writes resume, and at the end
    every acknowledged write is there and the history is linearizable."""
    whole_cluster_kill9_rounds(make_cluster(n), n, "")


def test_whole_cluster_kill9_in_replicated_mode(make_cluster):
    """`durability: replicated` acknowledges a write before any fdatasync of it but after its
    write(): a kill -9 of every node at once (no power cut) loses no acknowledged write, since
    the page cache keeps what each process wrote. The interval is long enough that the kills
    hit writes not synced yet."""
    whole_cluster_kill9_rounds(make_cluster(3, extra=test_faults.REPLICATED), 3, ", replicated")


def whole_cluster_kill9_rounds(c, n, what):
    c.leader()
    rng = random.Random(SEED)
    wl = Workload(c.ports, seed=SEED).start()
    rounds = []
    try:
        wl.wait_progress(200, 15)
        for r in range(4):
            before = wl.stats()
            order = crash_all(c, rng)
            restart_all(c)
            li = c.leader(deadline_s=15)
            rounds.append((order, c.names[li], c.term(li)))
            wl.wait_progress(300, 20, "writes acknowledged after whole-cluster crash %d (before it: %s)" % (r, before))
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("whole-cluster kill -9 x4 (%d%s)" % (n, what), c, verify(c, wl), rounds=rounds)


# ---- 2. five-node versions of the 3-node faults ----------------------------------------------


def wait_rejoined(c, nodes):
    """After healing: each of `nodes` follows the current leader and has applied the commit
    index the leader had when the wait started. (wait_converged also wants the leader's whole
    log committed at one poll, which a busy workload rarely leaves it; verify() checks full
    convergence after the workload stops.)"""
    for i in nodes:
        wait_follows_and_caught_up(c, i, deadline_s=30)


def isolate_leader_round(c, wl, mode, hold_s=3.0):
    """partition_round (test_faults.py) for a leader cut off alone, but waiting for the healed
    node to rejoin instead of for the whole cluster to go quiet under load: the other n-1
    elect a leader and go on, the isolated node acknowledges nothing and answers
    -NOQUORUM. Returns what it answered."""
    old = c.leader()
    old_term = c.term(old)
    majority = [i for i in range(len(c.ports)) if i != old]
    c.net.partition([old], mode=mode)
    # The cut is in force when partition() returns (fault_proxy's gate); reads may be served
    # from a lease until it ends (as in partition_round).
    t_cut = time.monotonic()
    t_reads = t_cut + lease_s(c)
    try:
        li = c.leader(deadline_s=15, exclude=[old])
        assert c.term(li) > old_term, "%s leads the majority in term %d, as before the cut" % (c.names[li], old_term)
        wl.wait_progress(100, 20, "writes acknowledged by the majority", ports=[c.ports[i] for i in majority])
        wait_for(lambda: wl.count(lambda o: o.node == c.ports[old] and o.invoke >= t_cut
                                  and (o.err or "").startswith("NOQUORUM")), 20,
                 "%s, cut off alone, to answer -NOQUORUM" % c.names[old])
        # Hold the partition long enough that requests on the minority run out their
        # request timeout (1 s) and a client timeout (2 s): the fault's duration.
        left = hold_s - (time.monotonic() - t_cut)
        if left > 0:
            time.sleep(left)
        t_heal = time.monotonic()
    finally:
        c.net.heal()
    acked, answers = not_acked_on(wl, [c.ports[old]], t_cut, t_heal, reads_from=t_reads)
    assert not acked, "the isolated %s acknowledged %d ops while cut off, e.g. %r" % (
        c.names[old], len(acked), acked[:5])
    assert sum(answers.values()) > 0, "no request reached the isolated node: the check above proves nothing"
    wait_rejoined(c, [old])
    return answers


@pytest.mark.parametrize("n", SIZES)
def test_partition_isolating_the_leader(make_cluster, n):
    """The leader alone on one side of a partition (stall, then drop) acknowledges nothing
    and answers -NOQUORUM; the other n-1 elect a leader and go on; healing converges."""
    c = make_cluster(n, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    answers = []
    try:
        wl.wait_progress(200, 15)
        for mode in ("stall", "drop"):
            answers.append(isolate_leader_round(c, wl, mode))
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("partition leader isolated (%d)" % n, c, verify(c, wl), minority_answers=answers)


@pytest.mark.parametrize("n", SIZES)
def test_one_way_loss_around_the_leader(make_cluster, n):
    """When the leader's messages to everyone are lost (it still hears them), and then when it
    hears nobody (its messages still arrive), a new leader takes over, the old one stops
    leading, no write is acknowledged twice, and healing converges."""
    c = make_cluster(n, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    seen = []
    try:
        wl.wait_progress(200, 15)
        for direction in ("out", "in"):
            li = c.leader()
            term = c.term(li)
            others = [i for i in range(n) if i != li]
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
                wait_for(lambda: c.role(li)[0] != "leader", 15, "the old leader to stop leading")
                seen.append((direction, c.names[li], c.role(li)[0]))
            finally:
                c.net.heal()
            wait_rejoined(c, [li])
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("one-way loss (%d)" % n, c, verify(c, wl), old_leader_roles=seen)


@pytest.mark.parametrize("n", SIZES)
def test_sigstopped_leader_steps_down_and_never_double_acknowledges(make_cluster, n):
    """Three times, the leader is frozen (SIGSTOP) for three election timeouts: the others
    elect a new leader in a higher term, the old one steps down after SIGCONT, and no write is
    acknowledged by both leaders: the pinned clients keep requests queued at the frozen
    leader, and whatever it answers after SIGCONT goes into the history that must be
    linearizable (with unique SET values, a write applied twice or lost shows up there)."""
    c = make_cluster(n)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports).start()
    frozen = []
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
                left = 3 * ELECTION_TIMEOUT_S - (time.monotonic() - t0)
                if left > 0:
                    time.sleep(left)  # the fault's duration
            finally:
                t_cont = time.monotonic()
                c.kill(li, signal.SIGCONT)
            wait_for(lambda: c.role(li)[0] == "follower", 15, "the old leader to step down")
            wl.wait_progress(100, 15, "writes acknowledged after SIGCONT")
            # What the frozen leader answered to requests sent to it while it was frozen
            # (reported; correctness is the linearizability check).
            acked, answers = not_acked_on(wl, [c.ports[li]], t0, t_cont)
            pending = [o for o in wl.history + wl.ledger()
                       if o.node == c.ports[li] and t0 <= o.invoke <= t_cont]
            answers["ok"] = sum(1 for o in pending if o.status == OK)
            frozen.append((c.names[li], term, c.names[ni], answers))
    finally:
        wl.stop()
    report("sigstop x3 (%d)" % n, c, verify(c, wl), frozen=frozen)


@pytest.mark.parametrize("n", SIZES)
def test_rolling_restart_under_load(make_cluster, n):
    """Every node in turn is stopped with SIGTERM (clean exit), restarted and caught up while
    the workload runs; nothing acknowledged is lost and the history is linearizable."""
    c = make_cluster(n)
    c.leader()
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        for i in range(n):
            c.nodes[i].stop()  # SIGTERM; asserts exit code 0
            wl.wait_progress(50, 20, "writes acknowledged while %s is down" % c.names[i])
            restart(c, i)
            wait_follows_and_caught_up(c, i)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("rolling restart (%d)" % n, c, verify(c, wl))


@pytest.mark.parametrize("n", SIZES)
def test_kill9_leader_repeatedly_under_load(make_cluster, n):
    """Four rounds of kill -9 of the leader (restarted and caught up each time) lose no
    acknowledged write and keep the history linearizable."""
    c = make_cluster(n)
    c.leader()
    wl = Workload(c.ports, seed=SEED).start()
    try:
        wl.wait_progress(200, 15)
        kill_leader_rounds(c, wl, 4)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("kill9x4 (%d)" % n, c, verify(c, wl))


# ---- 3. a node with the wrong cluster secret -------------------------------------------------

WRONG_SECRET = "not-the-test-secret"
REFUSAL = "failed to prove the cluster secret"
WATCH_S = 4.0  # how long a wrong-secret node runs: election timeouts and a few peer redials


def log_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def logs_of(c, i):
    """Node i's server.log, its older lives' (server.log.N) first."""
    d = os.path.join(c.dir, "w%d" % i)
    old = sorted((f for f in os.listdir(d) if f.startswith("server.log.")), key=lambda f: int(f.rsplit(".", 1)[1]))
    return "".join(log_text(os.path.join(d, f)) for f in old + ["server.log"])


def refusal_logged(text, peer):
    """A log line about `peer` saying the handshake was refused because the secrets differ.
    Which side notices first depends on who dialled (the dialler checks the acceptor's proof
    first), and repeats of a refusal of one peer are logged once per 10 s whatever their
    direction, so only the peer's name and the reason are required."""
    return any(("peer %s (" % peer) in ln and REFUSAL in ln and "secrets differ" in ln for ln in text.splitlines())


def lines_with(text, needle, n=2):
    return [ln for ln in text.splitlines() if needle in ln][:n]


def start_server(argv, port, workdir):
    s = Server(argv, port, workdir)
    try:
        s.wait_ready()
    except BaseException:
        if s.alive():
            s.send_signal(signal.SIGKILL)
            s.wait_exit()
        raise
    return s


def start_intruder(c, name, port):
    """A process on client port `port` claiming to be member `name` (a name the members know,
    so that the handshake gets as far as the secret), with the cluster's bootstrap list except
    that its own entry names its own fresh ports, a fresh data directory and the wrong secret.
    (It cannot take the bootstrap list unchanged: a node listens on its own entry's port, and
    the real member holds that one.)"""
    me = c.names.index(name)
    boot = ",".join("%s@127.0.0.1:%d" % (nm, (port if j == me else c.ports[j]) + 10000)
                    for j, nm in enumerate(c.names))
    workdir = os.path.join(c.dir, "intruder")
    os.makedirs(workdir, exist_ok=True)
    argv = [c.bin, "--node-id", name, "--bind", "127.0.0.1", "--port", str(port),
            "--peer-port", str(port + 10000), "--data-dir", os.path.join(workdir, "data"),
            "--bootstrap", boot, "--cluster-secret", WRONG_SECRET]
    for k, v in EXTRA.items():
        argv += ["--" + k, str(v)]
    return start_server(argv, port, workdir)


def watch_outsider(port, t_start):
    """For WATCH_S from t_start, polls the node on `port`: it must never lead, and its commit
    index and key count must not move (it gets no entries). Returns the roles seen."""
    first = info(port)
    with RawConn(port, timeout=5) as conn:
        assert conn.cmd("READONLY") == "OK"
        keys0 = conn.cmd("DBSIZE")
        roles = set()

        def check():
            r = info(port)
            roles.add(r["raft_role"])
            assert r["raft_role"] != "leader", "the wrong-secret node became leader: %r" % r
            assert r["raft_commit_index"] == first["raft_commit_index"], (first, r)
            assert conn.cmd("DBSIZE") == keys0
            return time.monotonic() - t_start > WATCH_S

        wait_for(check, WATCH_S + 15, "the wrong-secret node to run for %.0f s" % WATCH_S)
    # check() asserted on every poll (a failed assertion ends the wait at once); the roles
    # seen are checked again as a whole, so the report cannot show a leader the test passed.
    assert roles and "leader" not in roles, "roles seen on the wrong-secret node: %r" % roles
    return sorted(roles), first["raft_commit_index"], keys0


def assert_no_secret_in_logs(texts):
    for who, text in texts.items():
        for secret in ("test-secret", WRONG_SECRET):
            assert secret not in text, "%s's log contains a secret" % who


def test_node_with_wrong_secret_is_refused_and_cluster_goes_on(make_cluster):
    """An extra process with the wrong --cluster-secret, claiming the leader's name, dials the
    members: every handshake is refused, its log and every other member's log say the secrets
    differ (and neither secret is logged), it never leads, never gets an entry or a key,
    acknowledges nothing to the client pinned on it, and the cluster keeps acknowledging
    writes with a linearizable history."""
    c = make_cluster(3)
    li = c.leader()
    name = c.names[li]
    others = [i for i in range(3) if i != li]
    port = free_port_pair()
    while port in c.ports:
        port = free_port_pair()
    # One pinned client probes the intruder with SET/GET/INCR; until the intruder runs it
    # only fails to connect (no op is recorded for a request never sent).
    wl = Workload(c.ports, seed=SEED, pinned=[port]).start()
    intruder = None
    try:
        wl.wait_progress(200, 15)
        t_start = time.monotonic()
        intruder = start_intruder(c, name, port)

        def refused_everywhere():
            mine = intruder.log_tail(1 << 20)
            return all(refusal_logged(logs_of(c, i), name) for i in others) and \
                all(refusal_logged(mine, c.names[i]) for i in others)

        wait_for(refused_everywhere, 15, "the refusal in the intruder's and the members' logs")
        roles, commit, keys = watch_outsider(port, t_start)
        assert commit == "0" and keys == 0, (commit, keys)
        with RawConn(port, timeout=5) as conn:
            assert conn.cmd("READONLY") == "OK"
            for k in wl.keys:
                assert conn.cmd("GET", k) is None
        wl.wait_progress(100, 15, "writes acknowledged with the intruder running")
        t_end = time.monotonic()
        acked, answers = not_acked_on(wl, [port], t_start, t_end)
        assert not acked, "the intruder acknowledged %d ops, e.g. %r" % (len(acked), acked[:5])
        assert sum(answers.values()) > 0, "no request reached the intruder"
    finally:
        wl.stop()
        if intruder is not None:
            intruder.stop()  # SIGTERM; asserts exit code 0
    logs = {c.names[i]: logs_of(c, i) for i in range(3)}
    logs["intruder"] = log_text(intruder.log_path)
    assert_no_secret_in_logs(logs)
    report("wrong secret, extra node", c, verify(c, wl), impersonated=name, intruder_roles=roles,
           intruder_answers=answers, intruder_log=lines_with(logs["intruder"], REFUSAL),
           member_log={c.names[i]: lines_with(logs[c.names[i]], REFUSAL, 1) for i in others})


def test_member_restarted_with_wrong_secret_is_refused_then_rejoins(make_cluster):
    """A follower restarted in place (same ports, same data) with the wrong secret: every
    handshake between it and the members is refused, both sides log that the secrets differ,
    it never leads and gets no new entry, the other two go on; restarted with the right
    secret it catches up, and nothing acknowledged is lost."""
    c = make_cluster(3)
    li = c.leader()
    f = (li + 1) % 3
    others = [i for i in range(3) if i != f]
    wl = Workload(c.ports, seed=SEED, pinned=[c.ports[f]]).start()
    try:
        wl.wait_progress(200, 15)
        c.nodes[f].stop()  # SIGTERM; asserts exit code 0
        log = os.path.join(c.dir, "w%d" % f, "server.log")
        os.rename(log, log + ".1")
        argv = c.argv(f)
        argv[argv.index("--cluster-secret") + 1] = WRONG_SECRET
        t_start = time.monotonic()
        c.nodes[f] = start_server(argv, c.ports[f], os.path.join(c.dir, "w%d" % f))
        def refused_everywhere():
            mine = c.nodes[f].log_tail(1 << 20)
            return all(refusal_logged(logs_of(c, i), c.names[f]) for i in others) and \
                all(refusal_logged(mine, c.names[i]) for i in others)

        wait_for(refused_everywhere, 15, "the refusal in the restarted node's and the members' logs")
        roles, commit, keys = watch_outsider(c.ports[f], t_start)
        wl.wait_progress(100, 15, "writes acknowledged with a member on the wrong secret")
        t_end = time.monotonic()
        acked, answers = not_acked_on(wl, [c.ports[f]], t_start, t_end)
        assert not acked, "the wrong-secret node acknowledged %d ops, e.g. %r" % (len(acked), acked[:5])
        assert sum(answers.values()) > 0, "no request reached the wrong-secret node"
        c.nodes[f].stop()
        restart(c, f)  # the right secret again
        wait_follows_and_caught_up(c, f)
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    logs = {c.names[i]: logs_of(c, i) for i in range(3)}
    assert_no_secret_in_logs(logs)
    report("wrong secret, member restarted", c, verify(c, wl), node=c.names[f], roles=roles,
           commit_index=commit, keys=keys, answers=answers,
           member_log={c.names[i]: lines_with(logs[c.names[i]], REFUSAL, 1) for i in others})

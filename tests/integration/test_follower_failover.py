"""Clients of followers see a failover as clients of the leader do (issue 9): plain python3-redis
clients without sessions, each connected to a follower, write in a loop while the leader is
killed with kill -9, again and again.

request-timeout-ms is set to 60 s here and the clients' socket timeout to 15 s: a follower that
forwarded into the dead leader's link, or waited out the request timeout, leaves its client
without an answer, and the client's timeout fails the test. A follower forwards each write
under a session of its own and sends a write lost with its leader again to the next one, so a
plain client of a follower never gets -UNKNOWN here, and the counter equals exactly the INCRs
acknowledged. No timing is asserted: the benchmark (make bench-failover) measures how fast."""

import threading

import pytest
import redis

from cluster import Cluster, ClusterSet, info
from conftest import wait_for
from fault_proxy import ProxiedCluster

EXTRA = {"request-timeout-ms": 60000}


@pytest.fixture
def make_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, extra=None, proxied=False):
        return clusters.start(ProxiedCluster if proxied else Cluster, n, dict(EXTRA, **(extra or {})))

    yield make
    clusters.stop_all()


class FollowerClient(threading.Thread):
    """INCRs a shared counter through one follower until told to stop, recording every
    outcome with the wall-clock moment it was sent."""

    def __init__(self, port, key, stop, pipeline=1):
        super().__init__(daemon=True)
        self.port, self.key, self.stop, self.pipeline = port, key, stop, pipeline
        self.acked, self.unknown, self.errors, self.failure = 0, [], [], None
        self.dead_at = None   # when the round's leader was dead (set by the test)

    def outcome(self, sent, e):
        text = str(e)
        if text.startswith("UNKNOWN"):
            self.unknown.append((sent, text))
        elif text.startswith(("TRYAGAIN", "NOQUORUM")):
            self.errors.append(text)   # not applied
        else:
            raise e

    def run(self):
        import time
        r = redis.Redis("127.0.0.1", self.port, socket_timeout=15, socket_connect_timeout=5)
        try:
            while not self.stop.is_set():
                sent = time.monotonic()
                if self.pipeline > 1:
                    # INCRs pipelined in one write: the follower forwards them in batches; the
                    # replies keep their order, so the values one client sees only grow.
                    p = r.pipeline(transaction=False)
                    for _ in range(self.pipeline):
                        p.incr(self.key)
                    last = 0
                    for v in p.execute(raise_on_error=False):
                        if isinstance(v, redis.ResponseError):
                            self.outcome(sent, v)
                            continue
                        assert v > last, "pipelined INCRs answered out of order: %d after %d" % (v, last)
                        last = v
                        self.acked += 1
                    continue
                try:
                    r.incr(self.key)
                    self.acked += 1
                except redis.ResponseError as e:
                    self.outcome(sent, e)
        except Exception as e:  # a timeout, a reset, garbage: the test fails on it
            self.failure = repr(e)


def wait_acked_after(clients, stop, deadline_s=30):
    """Waits until every client (that has not failed) has an acknowledgement more than it had
    when called: each got through the failover."""
    import time
    marks = [t.acked for t in clients]
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and any(
            t.acked <= m and t.failure is None for t, m in zip(clients, marks)):
        stop.wait(0.02)


def start_follower_clients(c, li, key, stop, per_node=2, acks=50):
    """Starts `per_node` clients on every member but li and waits until they have `acks`
    writes acknowledged between them: the load runs."""
    import time
    rc = [FollowerClient(c.ports[i], key, stop) for i in range(len(c.ports)) if i != li
          for _ in range(per_node)]
    for t in rc:
        t.start()
    deadline = time.monotonic() + 30
    while sum(t.acked for t in rc) < acks and time.monotonic() < deadline:
        stop.wait(0.02)
    return rc


def run_rounds(c, rounds, key, pipeline=1):
    """Kills the leader `rounds` times (restarting it each time) under load from clients of
    every follower (each sending `pipeline` INCRs at a time); returns the clients and the kill
    moments."""
    import time
    clients, kills = [], []
    for _ in range(rounds):
        li = c.leader()
        stop = threading.Event()
        round_clients = [FollowerClient(c.ports[i], key, stop, pipeline)
                         for i in range(len(c.nodes)) if i != li for _ in range(2)]
        for t in round_clients:
            t.start()
        base = sum(t.acked for t in round_clients)
        deadline = time.monotonic() + 30
        while sum(t.acked for t in round_clients) < base + 50 and time.monotonic() < deadline:
            stop.wait(0.02)   # until the load runs: wait for acknowledged writes, not time
        old_term = c.term(li)
        c.kill(li)   # returns once the process is gone
        kills.append(time.monotonic())
        for t in round_clients:
            t.dead_at = kills[-1]
        new = c.leader(deadline_s=20, exclude=(li,))
        assert c.term(new) > old_term   # a new election, not a stale view of the old leader
        # Every follower client gets writes acknowledged by the new leader.
        wait_acked_after(round_clients, stop)
        stop.set()
        for t in round_clients:
            t.join(30)
        c.start(li)
        clients += round_clients
    return clients, kills


@pytest.mark.parametrize("n", [3, 5])
def check_exactly_once(c, clients, key):
    """Every client got answers, none -MOVED, none -UNKNOWN (writes in flight when the leader
    failed were sent again under the follower's session), and the counter holds exactly the
    acknowledged INCRs: none lost, none applied twice."""
    for t in clients:
        assert t.failure is None, "a client of a follower failed: %s" % t.failure
        assert all(not e.startswith("MOVED") for e in t.errors), t.errors
        assert t.unknown == [], t.unknown[:3]
    acked = sum(t.acked for t in clients)
    li = c.leader()
    final = int(redis.Redis("127.0.0.1", c.ports[li], socket_timeout=10).get(key))
    assert final == acked, (acked, final)
    # Not vacuous: some forward was caught by the failure (sent again, or run again when its
    # frame never left). Stats of a member restarted since are gone; the others' remain.
    stats = [info(p, "stats") for p in c.ports]
    moved = sum(int(s["forwards_resent"]) + int(s["forwards_rerun"]) for s in stats)
    assert moved > 0, "no forward was in flight at any failure: the test proved nothing"
    return acked, sum(int(s["forwards_resent"]) for s in stats)


@pytest.mark.parametrize("n", [3, 5])
def test_follower_clients_survive_leader_kills(make_cluster, n):
    """Clients of followers keep writing across repeated kill -9 of the leader: every client
    gets answers (none waits out the request timeout), none sees -MOVED in proxy mode or
    -UNKNOWN, and the counter equals the acknowledged INCRs exactly."""
    c = make_cluster(n)
    clients, kills = run_rounds(c, 3, "ff:ctr")
    check_exactly_once(c, clients, "ff:ctr")


def test_pipelined_follower_clients_survive_leader_kills(make_cluster):
    """The same with each client pipelining 16 INCRs: the follower sends them to the leader in
    batches (one frame, one slot each), and across kill -9 of the leader every reply comes, in
    order, none -UNKNOWN, and the counter equals the acknowledged INCRs: a batch lost with its
    leader is sent again under its slots and applied once."""
    c = make_cluster(3)
    clients, kills = run_rounds(c, 3, "ff:pipe", pipeline=16)
    check_exactly_once(c, clients, "ff:pipe")
    batched = sum(int(info(p, "stats")["forwards_batched"]) for p in c.ports)
    assert batched > 0, "no request went in a batch: the test proved nothing"


def test_unknown_only_for_writes_in_flight(make_cluster):
    """A write sent to a follower after the leader was killed (and the follower saw its link
    go down) is never -UNKNOWN: it waits for the next leader and gets the real reply."""
    c = make_cluster(3)
    li = c.leader()
    fi = (li + 1) % 3
    r = redis.Redis("127.0.0.1", c.ports[fi], socket_timeout=15)
    assert r.set("before", "1")
    c.kill(li)
    # The write goes right after the kill, mostly before any election has finished.
    assert r.set("after", "2") is True
    assert r.incr("after-ctr") == 1
    assert int(info(c.ports[fi], "stats")["forwards_unknown"]) == 0


def test_moved_mode_never_redirects_to_a_dead_leader(make_cluster):
    """With redirect: moved, a follower answers -MOVED to the new leader once it knows it and
    -TRYAGAIN before, never a redirect to the leader that was killed."""
    c = make_cluster(3, {"redirect": "moved"})
    li = c.leader()
    fi = (li + 1) % 3
    r = redis.Redis("127.0.0.1", c.ports[fi], socket_timeout=15)
    dead = "127.0.0.1:%d" % c.ports[li]
    c.kill(li)
    seen = []
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            r.set("k", "v")
            break   # this follower became the leader
        except redis.ResponseError as e:
            text = str(e)
            seen.append(text)
            assert dead not in text, "redirected to the dead leader: %s" % text
            if text.startswith("MOVED"):
                break
            # NOQUORUM: on a machine loaded enough for gossip to find the third member dead
            # for a moment, the follower counts itself cut off; it redirects nowhere either.
            assert text.startswith(("TRYAGAIN", "NOQUORUM")), text
    assert seen == [] or seen[-1].startswith("MOVED"), seen


def test_minority_answers_noquorum_at_once(make_cluster):
    """The last live member of five, cut off from the majority, answers writes and reads with
    -NOQUORUM instead of making each request wait out request-timeout-ms (60 s here: the
    client's 15 s timeout would fire)."""
    c = make_cluster(5)
    li = c.leader()
    survivor = (li + 1) % 5
    for i in range(5):
        if i != survivor:
            c.kill(i)
    r = redis.Redis("127.0.0.1", c.ports[survivor], socket_timeout=15)
    import time
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        try:
            r.set("k", "v")
            last = "OK"
        except redis.ResponseError as e:
            last = str(e)
            if last.startswith("NOQUORUM"):
                break
    assert last is not None and last.startswith("NOQUORUM"), last
    with pytest.raises(redis.ResponseError, match="^NOQUORUM"):
        r.get("k")


def test_proxy_clients_never_see_moved_during_a_drain(make_cluster):
    """Plain clients of followers writing while the leader drains (hands leadership over and
    exits) never get -MOVED in proxy mode: a forward the old leader answers -MOVED ran
    nothing there, and the follower runs it again on the new leader (issue 20 item 7)."""
    import os
    import subprocess
    import time
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    c = make_cluster(3)
    for _ in range(4):
        li = c.leader()
        stop = threading.Event()
        clients = [FollowerClient(c.ports[i], "dr:ctr", stop)
                   for i in range(3) if i != li for _ in range(4)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 30
        while sum(t.acked for t in clients) < 200 and time.monotonic() < deadline:
            stop.wait(0.02)
        r = subprocess.run([exe, "-p", str(c.ports[li]), "node", "drain"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert c.nodes[li].wait_exit(20) == 0
        c.nodes[li]._stopped = True
        wait_acked_after(clients, stop)
        stop.set()
        for t in clients:
            t.join(30)
        for t in clients:
            assert t.failure is None, t.failure
            assert not any(e.startswith("MOVED") for e in t.errors), t.errors[:3]
        c.start(li)


def test_follower_clients_survive_a_stopped_leader(make_cluster):
    """SIGSTOP of the leader: its links stay up, so the followers learn of the failure only
    from the election; the writes forwarded to it meanwhile are sent again to the new leader.
    Clients of followers get answers (none waits out the 60 s request timeout), never
    -UNKNOWN, and the counter equals the acknowledged INCRs exactly, although the stopped
    leader, resumed, still holds some of those writes in its log."""
    import signal
    import time
    c = make_cluster(3)
    clients = []
    for _ in range(2):
        li = c.leader()
        stop = threading.Event()
        rc = start_follower_clients(c, li, "st:ctr", stop)
        c.kill(li, signal.SIGSTOP)
        try:
            ni = c.leader(deadline_s=20, exclude=(li,))
            wait_for(lambda: all(info(c.ports[i])["raft_leader"] == c.names[ni]
                                 for i in range(3) if i != li), 20,
                     "both followers to know the new leader")
            known_at = time.monotonic()
            for t in rc:
                t.dead_at = known_at
            wait_acked_after(rc, stop)
        finally:
            stop.set()
            for t in rc:
                t.join(30)
            c.kill(li, signal.SIGCONT)
        clients += rc
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 20,
                 "the stopped leader to rejoin as a follower")
    check_exactly_once(c, clients, "st:ctr")


@pytest.mark.parametrize("mode", ["stall", "drop"])
def test_follower_clients_survive_an_isolated_leader(make_cluster, mode):
    """The leader is cut off alone by a partition (fault_proxy: its peer links stall, or drop
    every connection), twice; clients of the other members write throughout. The writes they
    forwarded to the isolated leader are sent again to the new one; the old leader's copies,
    never committed, are discarded when it rejoins. No -UNKNOWN, and the counter equals the
    acknowledged INCRs exactly."""
    import time
    c = make_cluster(3, proxied=True)
    clients = []
    for _ in range(2):
        li = c.leader()
        old_term = c.term(li)
        stop = threading.Event()
        rc = start_follower_clients(c, li, "iso:ctr", stop)
        c.net.partition([li], mode=mode)
        try:
            ni = c.leader(deadline_s=20, exclude=(li,))
            assert c.term(ni) > old_term
            wait_acked_after(rc, stop)
        finally:
            stop.set()
            for t in rc:
                t.join(30)
            c.net.heal()
        clients += rc
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 20,
                 "the isolated leader to rejoin as a follower")
    acked, resent = check_exactly_once(c, clients, "iso:ctr")
    assert acked > 0


def test_follower_writes_obey_maxmemory_as_the_command_alone(make_cluster):
    """A follower's session wrapper (HY.REQ) is refused for lack of memory exactly when the
    command it wraps would be: under maxmemory with noeviction, SET through a follower gets
    -OOM while DEL still frees memory."""
    c = make_cluster(3, {"maxmemory": "2mb", "maxmemory-policy": "noeviction"})
    li = c.leader()
    fi = (li + 1) % 3
    r = redis.Redis("127.0.0.1", c.ports[fi], socket_timeout=15)
    value = "x" * 4096
    with pytest.raises(redis.ResponseError, match="^OOM"):
        for i in range(2000):
            r.set("big:%d" % i, value)
    assert r.delete("big:0", "big:1") == 2
    assert int(info(c.ports[fi], "stats")["forwards_unknown"]) == 0

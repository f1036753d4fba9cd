"""Faults of a grid of 16 partitions under checked histories (issue 11's "Tests": 3 and 5 nodes,
at least 16 partitions, RedisCluster and plain clients while leaders are killed, paused and
isolated).

test_partitions.py and test_replication_factor.py run kill -9 with 8 partitions; here:

  - 3 nodes, 16 partitions: the node leading the most partitions is paused (SIGSTOP), then
    killed (kill -9), then paused again, while plain clients (pinned to every node, so that
    a frozen node's queued requests are answered after SIGCONT) and a RedisCluster client
    (redis-py, each key sent to its partition's leader) write the same keys. Only the
    victim's partitions change leader, the others never stop, and the whole history is
    linearizable;
  - 5 nodes, 16 partitions, replication factor 3, peers talking through the fault proxy:
    the node leading the most partitions is cut off from every other; every partition keeps a
    majority and a leader among the four, the cut-off node acknowledges nothing, and after
    healing every replica converges and the history is linearizable.

Real processes on 127.0.0.1; every wait has a deadline.
"""

import os
import signal
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from cluster import Cluster, ClusterSet
from conftest import RawConn, RespError, wait_for
from fault_proxy import ProxiedCluster
from lincheck import INFO, OK, VALUE_SPAN, Op
from workload import Workload, verify_partitioned

pytestmark = pytest.mark.halyard_only

PARTS = 16
SLOTS = 16384
SEED = int(os.environ.get("HY_FAULT_SEED", "1"))
# As test_faults.py: a request on a node without a leader gets -TRYAGAIN before the clients'
# 2 s socket timeout.
EXTRA = {"partitions": PARTS, "request-timeout-ms": 1000}
ELECTION_TIMEOUT_S = 0.3  # the default --election-timeout-ms


@pytest.fixture
def make_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, proxied=False, **extra):
        return clusters.start(ProxiedCluster if proxied else Cluster, n, dict(EXTRA, **extra))

    yield make
    clusters.stop_all()


def leaders(c, port, addr_map=None):
    """{partition: leader's client port} from CLUSTER SHARDS on `port` (partitions whose leader
    it knows). addr_map turns the ports a proxied cluster's nodes know each other by into
    client ports."""
    addr_map = addr_map or {}
    with RawConn(port) as conn:
        got = conn.cmd("CLUSTER", "SHARDS")
    out = {}
    for sh in got:
        p = sh[1][0] * PARTS // SLOTS
        for nd in sh[3]:
            fields = dict(zip(nd[0::2], nd[1::2]))
            if fields[b"role"] == b"master":
                out[p] = addr_map.get(fields[b"port"], fields[b"port"])
    return out


def wait_all_led(c, live, addr_map=None, deadline_s=30):
    """Waits until every live node knows a leader, among the live nodes, for every partition;
    returns that map as the first live node sees it."""
    live_ports = {c.ports[i] for i in live}
    seen = {}

    def check():
        for i in live:
            got = leaders(c, c.ports[i], addr_map)
            if len(got) != PARTS or not set(got.values()) <= live_ports:
                seen["last"] = (c.names[i], got)
                return False
        return True

    wait_for(check, deadline_s, "every partition led by a live node, as every live node sees it (%r)" % (seen,))
    return leaders(c, c.ports[live[0]], addr_map)


def busiest(c, led):
    """The node leading the most partitions in `led`."""
    counts = {i: sum(1 for port in led.values() if port == c.ports[i]) for i in range(len(c.ports))}
    return max(counts, key=counts.get)


# What a RedisCluster call may raise while a node is frozen or dead. RedisClusterException is
# not a RedisError: redis-py 4.3 raises it when refreshing its slot map from a node that times
# out (its message then is "cannot pickle '_thread.lock' object", from copying the error).
# IndexError: redis-py 4.3's own state after a member's kill -9 (a CI run, session 21: "list
# index out of range" out of a call, beside its "'ClusterNode' object has no attribute
# 'redis_connection'"): a client library's failure, the call's outcome unknown, as any other.
CLIENT_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError,
                 IndexError)


class ClusterClient(threading.Thread):
    """A redis-py RedisCluster client running SET (unique values), GET and INCR on the
    workload's keys, recording each as a lincheck op in a history of the workload's. Any
    exception is indeterminate: redis-py retries on its own (-MOVED, -TRYAGAIN, connection
    errors), so a first attempt may have been applied before the error it finally raised."""

    def __init__(self, wl, ports, seed):
        super().__init__(name="cluster-client", daemon=True)
        self.wl, self.ports, self.seed = wl, ports, seed
        self.hist = []
        wl.histories.append(self.hist)
        self.acked = 0
        self.failure = None

    def run(self):
        import random
        rng = random.Random(self.seed)
        rc = None
        try:
            while not self.wl.stop_event.is_set():
                if rc is None:
                    try:
                        # One attempt per call: redis-py otherwise sends a command again
                        # after a timeout or a broken connection (cluster_error_retry_attempts),
                        # when the first may have been applied, and an INCR then counts twice
                        # while the history holds one. It still follows -MOVED and -TRYAGAIN
                        # (both: not applied).
                        rc = RedisCluster(startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", p) for p in self.ports],
                                          socket_timeout=2, socket_connect_timeout=2, cluster_error_retry_attempts=1)
                    except CLIENT_ERRORS:
                        self.wl.stop_event.wait(0.1)  # no op sent yet
                        continue
                key = rng.choice(self.wl.keys)
                r = rng.random()
                if r < 0.35:
                    op = Op("get", key, status=INFO)
                elif r < 0.7:
                    op = Op("set", key, arg=next(self.wl.uid) * VALUE_SPAN, status=INFO)
                else:
                    op = Op("incr", key, status=INFO)
                op.client, op.node = "rc", "cluster"
                op.invoke = time.monotonic()
                try:
                    if op.kind == "get":
                        v = rc.get(key)
                        op.result = None if v is None else int(v)
                    elif op.kind == "set":
                        assert rc.set(key, str(op.arg)) is True
                    else:
                        op.result = rc.incr(key)
                    op.status, op.complete = OK, time.monotonic()
                    self.acked += op.kind != "get"
                except CLIENT_ERRORS as e:
                    op.err = "%s: %s" % (type(e).__name__, str(e)[:80])
                    if not isinstance(e, redis.exceptions.ResponseError):
                        rc.close()
                        rc = None
                self.hist.append(op)
        except BaseException as e:  # the test reports it rather than a silent thread
            self.failure = e
        finally:
            if rc is not None:
                rc.close()

    def wait_progress(self, n, deadline_s, what):
        start = self.acked
        wait_for(lambda: self.failure is not None or self.acked >= start + n, deadline_s, what)
        assert self.failure is None, self.failure


def converged(c, wl, deadline_s=30):
    """verify_partitioned (a failing key's history written beside the cluster's logs), and no
    unexpected error reply. Returns a summary."""
    ledger, result = verify_partitioned(c, wl, deadline_s)
    assert not wl.errors, "unexpected error replies: %r" % (wl.errors[:10],)
    return dict(wl.stats(), ledger=len(ledger), ops_checked=result.ops_checked)


@pytest.mark.parametrize("n", [3, 5])
def test_pause_and_kill9_of_partition_leaders_with_cluster_and_plain_clients(make_cluster, n):
    """3 nodes (every node holds every partition) and 5 nodes (RF 3: each partition on three of
    them), 16 partitions: SIGSTOP, kill -9, SIGSTOP of the node leading the most partitions,
    RedisCluster and plain clients on the same keys: the other partitions keep their leaders,
    every partition is led by a live node again, the frozen node steps down where others took
    over, and the history is linearizable."""
    c = make_cluster(n, **({"replication-factor": 3} if n > 3 else {}))
    every = list(range(n))
    wait_all_led(c, every)
    # Keys over many partitions; plain clients roam, and one more per node stays on it.
    wl = Workload(c.ports, keys=16, seed=SEED, pinned=c.ports)
    rc = ClusterClient(wl, c.ports, SEED)
    wl.start()
    rc.start()
    rounds = []
    try:
        wl.wait_progress(200, 30)
        rc.wait_progress(50, 30, "RedisCluster writes acknowledged")
        for r, sig in enumerate((signal.SIGSTOP, signal.SIGKILL, signal.SIGSTOP)):
            led = wait_all_led(c, every)
            v = busiest(c, led)
            live = [i for i in every if i != v]
            victims = sorted(p for p, port in led.items() if port == c.ports[v])
            assert victims, "round %d: %s leads nothing" % (r, c.names[v])
            t0 = time.monotonic()
            c.kill(v, sig)
            try:
                after = wait_all_led(c, live)
                # Failure is per partition: every partition is led by a survivor, and the
                # ones a survivor led before were never without a leader meanwhile (a
                # balancer's hand-over between survivors is allowed).
                assert set(after.values()) <= {c.ports[i] for i in live}
                wl.wait_progress(100, 30, "writes acknowledged with %s down (round %d)" % (c.names[v], r))
                rc.wait_progress(20, 30, "RedisCluster writes with %s down (round %d)" % (c.names[v], r))
                if sig == signal.SIGSTOP:
                    left = 3 * ELECTION_TIMEOUT_S - (time.monotonic() - t0)
                    if left > 0:
                        time.sleep(left)  # the fault's duration: frozen for 3 election timeouts
            finally:
                if sig == signal.SIGSTOP:
                    c.kill(v, signal.SIGCONT)
            if sig == signal.SIGKILL:
                c.start(v)
            # The returning node learns who leads now (none of them is still itself where
            # another node took over) and gets its share back.
            wait_all_led(c, every)
            wl.wait_progress(100, 30, "writes acknowledged after round %d" % r)
            rounds.append((sig.name, c.names[v], len(victims)))
    finally:
        wl.stop()
        rc.join(30)
    assert rc.failure is None, rc.failure
    wait_all_led(c, every)
    summary = converged(c, wl)
    print("\n%d nodes, 16 partitions, pause/kill x3: rounds=%s %s cluster_client_acked=%d"
          % (n, rounds, summary, rc.acked))


@pytest.mark.parametrize("n", [3, 5])
def test_a_node_cut_off_with_16_partitions(make_cluster, n):
    """3 nodes, and 5 nodes with RF 3, 16 partitions, through the fault proxy: the node leading
    the most partitions is cut off; every partition is led among the others and keeps serving,
    the cut-off node acknowledges nothing, and healing converges to a linearizable history."""
    c = make_cluster(n, proxied=True, **({"replication-factor": 3} if n > 3 else {}))
    amap = c.moved_map()
    led = wait_all_led(c, range(n), amap)
    wl = Workload(c.ports, keys=16, seed=SEED, pinned=c.ports, addr_map=amap).start()
    try:
        wl.wait_progress(200, 30)
        led = wait_all_led(c, range(n), amap)
        v = busiest(c, led)
        others = [i for i in range(n) if i != v]
        victims = sorted(p for p, port in led.items() if port == c.ports[v])
        c.net.partition([v], mode="stall")
        t_cut = time.monotonic()
        try:
            after = wait_all_led(c, others, amap)
            assert set(after.values()) <= {c.ports[i] for i in others}
            wl.wait_progress(100, 30, "writes acknowledged by the others", ports=[c.ports[i] for i in others])
            # Requests reach the cut-off node (its pinned client's): refused or unanswered.
            wait_for(lambda: wl.count(lambda o: o.node == c.ports[v] and o.invoke >= t_cut and o.status != OK), 30,
                     "%s, cut off, to refuse requests" % c.names[v])
            left = 3.0 - (time.monotonic() - t_cut)
            if left > 0:
                time.sleep(left)  # the fault's duration: past the request and client timeouts
            t_heal = time.monotonic()
        finally:
            c.net.heal()
        acked = [o for o in wl.history + wl.ledger()
                 if o.node == c.ports[v] and t_cut <= o.invoke and o.status == OK and o.complete <= t_heal]
        assert not acked, "%s acknowledged %d ops while cut off, e.g. %r" % (c.names[v], len(acked), acked[:5])
        wait_all_led(c, range(n), amap)
        wl.wait_progress(100, 30, "writes acknowledged after healing")
    finally:
        wl.stop()
    summary = converged(c, wl)
    print("\n16 partitions on %d nodes, %s cut off (led %s): %s" % (n, c.names[v], victims, summary))


def test_keyspace_commands_of_a_cut_off_member_are_not_stale(make_cluster):
    """3 nodes, 16 partitions (each member holds every partition): DBSIZE, KEYS, SCAN and
    RANDOMKEY read each partition on its leader, so a member cut off from the others does not
    answer them from its own replicas, which lack what the majority acknowledged meanwhile: it
    answers an error, and the right count once healed. A READONLY connection still reads the
    member's own replicas (stale reads are what it asked for)."""
    c = make_cluster(3, proxied=True)
    amap = c.moved_map()
    wait_all_led(c, range(3), amap)
    v = 2
    with RawConn(c.ports[0]) as conn:
        for i in range(64):
            assert conn.cmd("SET", "ks:%d" % i, i) in (b"OK", "OK")
    ro = RawConn(c.ports[v])
    assert ro.cmd("READONLY") in (b"OK", "OK")
    # Its own replicas hold the first 64 keys (DBSIZE asks each partition's leader: it counts
    # 64 as soon as the leaders have them).
    wait_for(lambda: ro.cmd("DBSIZE") == 64, 20, "n3's own replicas to hold the first 64 keys")
    ro.close()
    c.net.partition([v], mode="stall")
    try:
        wait_all_led(c, [0, 1], amap)  # the others lead every partition: n3 stepped down
        with RawConn(c.ports[0]) as conn:
            for i in range(64, 128):
                assert conn.cmd("SET", "ks:%d" % i, i) in (b"OK", "OK")
            assert conn.cmd("DBSIZE") == 128
        # n3 has stepped down everywhere (check-quorum): a partition it still led would be
        # read from its replica, as its leader's.
        wait_for(lambda: c.ports[v] not in leaders(c, c.ports[v], amap).values(), 20,
                 "n3 to lead no partition")
        with RawConn(c.ports[v], timeout=30) as conn:
            for cmd in (("DBSIZE",), ("KEYS", "ks:*"), ("SCAN", "0", "COUNT", "1000"), ("RANDOMKEY",)):
                r = conn.cmd(*cmd)
                # Without a majority it cannot know; its own 64 keys would be a stale answer.
                assert isinstance(r, RespError), (cmd, r if not isinstance(r, list) else len(r))
            assert conn.cmd("READONLY") in (b"OK", "OK")
            assert conn.cmd("DBSIZE") == 64  # its own replicas, as READONLY asks
    finally:
        c.net.heal()
    wait_all_led(c, range(3), amap)
    wait_for(lambda: RawConn(c.ports[v]).cmd("DBSIZE") == 128, 30, "n3 to count 128 keys once healed")

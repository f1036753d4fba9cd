"""Leader leases (lease-ms): reads served without a heartbeat round stay linearizable when
the leader is frozen (SIGSTOP) past its lease and replaced, or isolated by a partition."""

import signal
import time

import pytest

from cluster import Cluster, ClusterSet, info
from conftest import wait_for
from fault_proxy import ProxiedCluster
from test_faults import ELECTION_TIMEOUT_S, SEED, partition_round, report
from workload import Workload, verify

pytestmark = pytest.mark.halyard_only

LEASE = {"request-timeout-ms": 1000, "lease-ms": 100}


@pytest.fixture
def lease_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, proxied=False, extra=LEASE):
        return clusters.start(ProxiedCluster if proxied else Cluster, n, dict(extra))

    yield make
    clusters.stop_all()


def test_lease_mode_is_reported_and_refused_when_unsafe(lease_cluster):
    c = lease_cluster(3)
    li = c.leader()
    assert info(c.ports[li])["raft_read_mode"] == "lease"
    # 200 ms * 1.05 is not below the 150 ms minimum election timeout: leases stay off.
    d = lease_cluster(1, extra={"lease-ms": 200})
    assert info(d.ports[0])["raft_read_mode"] == "readindex"
    assert "leases are off" in open(d.nodes[0].log_path).read()


def test_frozen_lease_holder_never_serves_stale_reads(lease_cluster):
    """The leader is SIGSTOPped for three election timeouts while pinned clients keep reads
    queued on it; a new leader takes writes; after SIGCONT the old one must not answer from
    its expired lease. The whole history stays linearizable."""
    c = lease_cluster(3)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports).start()
    try:
        wl.wait_progress(200, 15)
        for _ in range(2):
            li = c.leader()
            t0 = time.monotonic()
            c.kill(li, signal.SIGSTOP)
            try:
                c.leader(deadline_s=15, exclude=(li,))
                wl.wait_progress(50, 15, "writes acknowledged by the new leader")
                left = 3 * ELECTION_TIMEOUT_S - (time.monotonic() - t0)
                if left > 0:
                    time.sleep(left)
            finally:
                c.kill(li, signal.SIGCONT)
            wait_for(lambda: c.role(li)[0] == "follower", 15, "the old leader to step down")
            wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("lease sigstop x2", c, verify(c, wl))


def test_isolated_lease_holder_never_serves_stale_reads(lease_cluster):
    c = lease_cluster(3, proxied=True)
    c.leader()
    wl = Workload(c.ports, seed=SEED, pinned=c.ports, addr_map=c.moved_map()).start()
    try:
        wl.wait_progress(200, 15)
        li = c.leader()
        partition_round(c, wl, [li], [i for i in range(3) if i != li])
        wl.wait_progress(100, 15)
    finally:
        wl.stop()
    report("lease partition", c, verify(c, wl))

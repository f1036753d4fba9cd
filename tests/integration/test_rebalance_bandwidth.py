"""rebalance-bandwidth (issue 12): the snapshot bytes a node's partition leaders send followers
(a move's new replica above all) are paced to the setting, a runtime one, and read from the
snapshot files of the log rather than from copies kept in memory. Checked with real
processes: a node joins a cluster whose partitions hold more than their logs keep, so each
move streams a snapshot; every node's INFO counter of snapshot bytes sent stays within its
budget while the moves run; CONFIG SET rebalance-bandwidth 0 lifts the limit and the moves
finish."""
import signal
import time

import pytest

from cluster import info
from conftest import RawConn, wait_for
from test_membership import grow, placement  # noqa: F401 (grow is a fixture)

pytestmark = pytest.mark.halyard_only

RATE = 65536  # bytes a second, per node
CHUNK = 65536  # the Raft core's snapshot chunk: the pacer's bucket holds at least one


def load(port, parts, per_part, size):
    """per_part keys of `size` bytes in every partition, pipelined through one node (which
    forwards to each partition's leader); returns one key of each partition."""
    sample = {}
    value = "x" * size
    with RawConn(port, timeout=30) as conn:
        batch = []
        for i in range(parts * per_part):
            k = "bw%d" % i
            batch.append(k)
            if len(batch) == 200:
                conn.send(b"".join(conn.encode("SET", x, value) for x in batch))
                for x in batch:
                    assert conn.read() in ("OK", b"OK"), x
                batch = []
        if batch:
            conn.send(b"".join(conn.encode("SET", x, value) for x in batch))
            for x in batch:
                assert conn.read() in ("OK", b"OK"), x
        for i in range(200):
            k = "bw%d" % i
            sample.setdefault(conn.cmd("CLUSTER", "KEYSLOT", k) * parts // 16384, k)
    return sample


def sent(port):
    return int(info(port)["snapshot_sent_bytes"])


def test_moves_stream_snapshots_within_rebalance_bandwidth(grow):  # noqa: F811
    parts = 4
    c = grow(3, {"partitions": parts, "replication-factor": 3, "rebalance-bandwidth": RATE})
    # 1,500 writes of 400 bytes per partition: more entries than a leader keeps in memory
    # behind what it applied (1,024), so a new replica is caught up by a snapshot (~600 KB).
    sample = load(c.ports[0], parts, 1500, 400)
    assert len(sample) == parts, sample
    for p in c.ports:
        assert info(p)["rebalance_bandwidth"] == str(RATE)
    base = {p: sent(p) for p in c.ports}
    t0 = time.monotonic()
    j = c.add(0)
    # Watch every sender for 5 s of moves: no node may send more than its bucket (one chunk)
    # plus RATE a second since t0, however slow or loaded this machine is (the bound only
    # grows with time). 3 moves of ~600 KB each could not finish at that rate.
    peak = 0
    while time.monotonic() < t0 + 5:
        for p in c.ports[:3]:
            before = time.monotonic()
            d = sent(p) - base[p]
            peak = max(peak, d)
            assert d <= CHUNK + RATE * (before - t0) + 4096, (p, d, before - t0)
        time.sleep(0.2)
    assert peak > 0, "no snapshot was sent: the moves did not stream one (test set-up)"
    reps, _ = placement(c.ports[0], parts)
    load_j = sum(1 for r in reps.values() if c.ports[j] in r)
    assert load_j < 3, "the newcomer got its whole share within the budget's time: %r" % reps
    # Lifted at run time: the moves finish.
    for p in c.ports:
        with RawConn(p) as conn:
            assert conn.cmd("CONFIG", "SET", "rebalance-bandwidth", "0") in ("OK", b"OK")
            assert conn.cmd("CONFIG", "GET", "rebalance-bandwidth")[1] == b"0"

    def fair():
        reps, _ = placement(c.ports[0], parts)
        load = [sum(1 for r in reps.values() if port in r) for port in c.ports]
        return all(len(r) == 3 for r in reps.values()) and all(n == 3 for n in load)

    wait_for(fair, 90, "every member to hold 3 replicas once the limit is lifted")
    for p, k in sample.items():
        def local(k=k):
            with RawConn(c.ports[j]) as conn:
                conn.cmd("READONLY")
                return conn.cmd("GET", k) == b"x" * 400

        wait_for(local, 30, "the newcomer's replica of partition %d to hold its keys" % p)
    # The snapshots went from the leaders' disks, not from copies in memory: no node keeps
    # one (each would be ~600 KB per partition it led or installed).
    for p in c.ports:
        held = int(info(p, "memory")["used_memory_snapshots"])
        assert held < 64 * 1024, (p, held)


def test_moved_away_copies_leave_memory_and_come_back(grow):  # noqa: F811
    """A move leaves the source's copy of the partition behind: once the partition settled on
    the map's replicas (configuration committed), that copy's keyspace leaves memory (INFO
    partitions_parked; the snapshot stays on disk). When the map places the partition there
    again (the newcomer removed), the copy is read back from its snapshot and caught up: every
    old node serves every key again, those written meanwhile included."""
    parts = 4
    c = grow(3, {"partitions": parts, "replication-factor": 3})
    sample = load(c.ports[0], parts, 1500, 400)
    dataset = {p: int(info(p, "memory")["used_memory_dataset"]) for p in c.ports}
    j = c.add(0)

    def fair():
        reps, _ = placement(c.ports[0], parts)
        load = [sum(1 for r in reps.values() if port in r) for port in c.ports]
        return all(len(r) == 3 for r in reps.values()) and all(n == 3 for n in load)

    wait_for(fair, 90, "every member to hold 3 replicas")

    def parked():
        reps, _ = placement(c.ports[0], parts)
        return all(int(info(p)["partitions_parked"]) ==
                   sum(1 for r in reps.values() if p not in r) for p in c.ports[:3])

    wait_for(parked, 60, "each old member's moved-away copies to be parked")
    assert sum(int(info(p)["partitions_parked"]) for p in c.ports[:3]) == 3
    for p in c.ports[:3]:
        if int(info(p)["partitions_parked"]) > 0:
            now = int(info(p, "memory")["used_memory_dataset"])
            assert now < dataset[p] - 300 * 1000, (p, dataset[p], now)  # ~600 KB a partition
    # Written while the copies are parked: the copies must catch up past their snapshots.
    with RawConn(c.ports[0]) as conn:
        for i in range(200):
            assert conn.cmd("SET", "late%d" % i, "v%d" % i) in ("OK", b"OK")
    wait_for(lambda: cmd_ok(c.ports[0], "HALYARD", "REMOVE", c.names[j]), 30, "HALYARD REMOVE")

    def back():
        for i in range(3):
            reps, _ = placement(c.ports[i], parts)
            if any(c.ports[j] in r or len(r) != 3 for r in reps.values()):
                return False
        return all(int(info(p)["partitions_parked"]) == 0 for p in c.ports[:3])

    wait_for(back, 120, "the partitions back on the 3 old members, nothing parked")
    for p in c.ports[:3]:
        def served(p=p):
            with RawConn(p) as conn:
                conn.cmd("READONLY")
                ok = all(conn.cmd("GET", k) == b"x" * 400 for k in sample.values())
                return ok and all(conn.cmd("GET", "late%d" % i) == ("v%d" % i).encode()
                                  for i in range(200))

        wait_for(served, 60, "port %d's own replicas to hold every key" % p)
    c.kill(j, signal.SIGTERM)


def cmd_ok(port, *args):
    with RawConn(port) as conn:
        return conn.cmd(*args) in ("OK", b"OK")

"""Failure domains (issue 12, item 1): 6 nodes in 3 zones, 8 partitions, RF 3.

Each node is started with --zone (and --rack); it publishes them to the metadata group, whose
leader then spreads every partition's replicas over the three zones (the bootstrap placement
knew no zones, so partitions whose replicas shared a zone are moved: add, catch up, promote,
remove). Then a whole zone is killed (kill -9 of both its nodes) and every partition keeps a
majority and serves reads and writes through the survivors.

Real processes on 127.0.0.1, real clients.
"""

import json
import os
import signal
import subprocess

import pytest

from cluster import Cluster
from conftest import RawConn, wait_for

PARTS = 8
RF = 3
SLOTS = 16384
ZONES = ["east", "east", "west", "west", "north", "north"]


class ZonedCluster(Cluster):
    def argv(self, i):
        return super().argv(i) + ["--zone", ZONES[i], "--rack", "r%d" % (i % 2)]


@pytest.fixture
def zoned(tmp_path_factory):
    c = ZonedCluster(tmp_path_factory, len(ZONES), {"partitions": PARTS, "replication-factor": RF})
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, "\n".join(errors)


def shard_view(port):
    """{partition: sorted client ports of its replicas} from CLUSTER SHARDS on one node."""
    with RawConn(port) as c:
        got = c.cmd("CLUSTER", "SHARDS")
    out = {}
    for sh in got:
        nodes = [dict(zip(nd[0::2], nd[1::2])) for nd in sh[3]]
        out[sh[1][0] * PARTS // SLOTS] = sorted(nd[b"port"] for nd in nodes)
    return out


def halyctl(port, *args):
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    return subprocess.run([exe, "-p", str(port)] + list(args), capture_output=True, text=True, timeout=30)


def events(port, kind):
    with RawConn(port) as conn:
        got = conn.cmd("HALYARD", "EVENTS", "COUNT", "1000")
    out = [json.loads(e) for e in got]
    return [e for e in out if e["type"] == kind]


def key_in(port, partition, prefix):
    with RawConn(port) as c:
        for i in range(10000):
            k = "%s%d" % (prefix, i)
            if c.cmd("CLUSTER", "KEYSLOT", k) * PARTS // SLOTS == partition:
                return k
    raise AssertionError("no key for partition %d" % partition)


def test_replicas_in_distinct_zones_and_a_zone_lost(zoned):
    """Every partition ends on 3 replicas in 3 zones, as every node sees it, and no node reports
    a partition sharing a zone; each member's zone is shown by HALYARD MEMBERS. With both nodes
    of one zone killed (kill -9), every partition is written and read through every survivor."""
    c = zoned
    zone_of_port = {p: ZONES[i] for i, p in enumerate(c.ports)}

    def members_show_zones():
        for port in c.ports:
            with RawConn(port) as conn:
                doc = json.loads(conn.cmd("HALYARD", "MEMBERS", "JSON"))
            got = {m["name"]: (m.get("zone"), m.get("rack")) for m in doc["members"]}
            want = {c.names[i]: (ZONES[i], "r%d" % (i % 2)) for i in range(len(ZONES))}
            if got != want:
                return False
        return True

    wait_for(members_show_zones, 30, "every node shows every member's zone and rack")

    def spread():
        views = [shard_view(p) for p in c.ports]
        for v in views:
            if sorted(v) != list(range(PARTS)) or v != views[0]:
                return False
            for ports in v.values():
                if len(ports) != RF or len({zone_of_port[p] for p in ports}) != RF:
                    return False
        for port in c.ports:
            with RawConn(port) as conn:
                text = conn.cmd("INFO", "cluster").decode()
            if "partitions_sharing_zone:0\r\n" not in text:
                return False
        return views[0]

    placed = wait_for(spread, 60, "every partition on %d replicas in %d zones, on every node" % (RF, RF))
    assert len(placed) == PARTS
    # The bootstrap placement knew no zones: partitions were moved, each move an event on the
    # leader that made it (start) and on the one that saw it settle (end).
    started = [e for p in c.ports for e in events(p, "MOVE_STARTED")]
    assert started, "no MOVE_STARTED event on any node"
    assert {"partition", "target", "source", "epoch"} <= set(started[0])

    def finished():
        # Each end names a move that started (same partition and target, at that map epoch
        # or a later one: zones arriving one by one may change the map mid-move). Not every
        # start is sure to get its end: a leader elected after the move's last step committed
        # knows of no move (docs/partitioning.md "Moves and their progress").
        begun = {}
        for p in c.ports:
            for e in events(p, "MOVE_STARTED"):
                key = (e["partition"], e["target"])
                begun[key] = min(begun.get(key, e["epoch"]), e["epoch"])
        ends = [e for p in c.ports for e in events(p, "MOVE_FINISHED")]
        for e in ends:
            key = (e["partition"], e["target"])
            assert key in begun and begun[key] <= e["epoch"], (e, begun)
        return ends

    wait_for(finished, 30, "a MOVE_FINISHED event")
    # halyctl cluster rebalance status: every partition settled, no move left.
    def all_settled():
        r = halyctl(c.ports[2], "--json", "cluster", "rebalance", "status")
        st = json.loads(r.stdout)
        assert st["partitions"] == PARTS and st["pending"] == 0 and st["in_progress"] == 0, st
        return r.returncode == 0 and st["settled"] == PARTS and st["moves"] == []

    wait_for(all_settled, 30, "halyctl cluster rebalance status: every partition settled")
    r = halyctl(c.ports[3], "cluster", "rebalance", "status")
    assert r.returncode == 0 and "%d/%d partitions settled" % (PARTS, PARTS) in r.stdout, r.stdout
    r = halyctl(c.ports[0], "cluster", "status")
    assert r.returncode == 0 and "zone east rack r0" in r.stdout, r.stdout
    keys = {p: key_in(c.ports[0], p, "zone") for p in range(PARTS)}
    for p, k in keys.items():
        with RawConn(c.ports[0]) as conn:
            assert conn.cmd("SET", k, "before") in ("OK", b"OK")

    # The whole "east" zone goes: both its nodes, kill -9.
    lost = [i for i, z in enumerate(ZONES) if z == "east"]
    for i in lost:
        c.kill(i, signal.SIGKILL)
    survivors = [i for i in range(len(ZONES)) if i not in lost]
    for i in survivors:
        for p, k in keys.items():
            def served():
                with RawConn(c.ports[i]) as conn:
                    if conn.cmd("SET", k, "after-%d" % i) not in ("OK", b"OK"):
                        return False
                    got = conn.cmd("GET", k)
                assert got == ("after-%d" % i).encode(), (i, p, got)
                return True

            wait_for(served, 30, "partition %d written and read through node %d" % (p, i))

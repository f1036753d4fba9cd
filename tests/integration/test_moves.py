"""Replica moves under faults (issue 12, "Tests"): kill -9 the target, the source or the
metadata leader while a move is under way, and a whole zone of a 6-node, 3-zone cluster lost
and brought back, each under a concurrent checked workload.

Real processes on 127.0.0.1. The clusters and helpers are those of test_membership.py
(GrowingCluster, the `grow` fixture, CLUSTER SHARDS placement) and test_zones.py (ZonedCluster,
zones, a key of a given partition); this file only adds the observation of moves and the
checks of a history that spans them.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from cluster import ClusterSet, info
from conftest import RawConn, RespError, wait_for
import lincheck
from lincheck import INFO, OK
from test_http import scrape
from test_membership import SEED, cmd, grow, halyctl, placement  # noqa: F401 - grow is a fixture
from test_zones import ZONES, ZonedCluster, key_in, shard_view
from workload import Workload, _pipeline, final_reads

pytestmark = pytest.mark.halyard_only

PARTS = 8
RF = 3


def partition_views(c):
    """{partition: its leader's JSON object from HALYARD PARTITIONS JSON} over every live node
    (the highest term wins when two claim to lead). Only a leader's object is the group's
    latest configuration (voters, learners); the map's replicas are in every object."""
    out = {}
    for i, s in enumerate(c.nodes):
        if s is None or not s.alive():
            continue
        try:
            with RawConn(c.ports[i], timeout=2) as conn:
                r = conn.cmd("HALYARD", "PARTITIONS", "JSON")
        except OSError:
            continue  # a node starting or stopping: the others' views serve
        assert not isinstance(r, RespError), r
        for obj in json.loads(r)["partitions"]:
            if obj["role"] != "leader":
                continue
            # Every leader names its configuration and itself as the leader, a move's source
            # that still leads too.
            assert "voters" in obj and "learners" in obj and obj["leader"] == c.names[i], (c.names[i], obj)
            p = obj["partition"]
            if p not in out or obj["term"] > out[p]["term"]:
                out[p] = obj
    return out


def moves_of(views):
    """{partition: (targets, sources, learners)} for every partition whose leader's voters
    differ from the map's replicas."""
    out = {}
    for p, v in views.items():
        targets = sorted(set(v["replicas"]) - set(v["voters"]))
        sources = sorted(set(v["voters"]) - set(v["replicas"]))
        if targets or sources:
            out[p] = (targets, sources, sorted(v["learners"]))
    return out


def check_never_below_rf(views, rf=RF):
    """The issue's rule for moves: a partition never drops below its replication factor. Each
    leader's configuration is checked whenever it is seen, move or not: the new replica
    votes before the old one goes."""
    for p, v in views.items():
        assert len(v["voters"]) >= rf, "partition %d has %d voters during a move: %r" % (p, len(v["voters"]), v)


def rebalance_status(port):
    """halyctl cluster rebalance status --json, parsed (exit 1 only says some partition's
    leader was not reachable; the JSON is there either way)."""
    r = halyctl(port, "--json", "cluster", "rebalance", "status")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return json.loads(r.stdout)


def settled_everywhere(c, members, rf=RF, parts=PARTS):
    """A condition: every partition's leader has the map's replicas as its voters (halyctl's
    status: all settled, no move), every live node's CLUSTER SHARDS agrees on RF replicas per
    partition and a leader for each, and the members hold their fair share (no member two
    replicas more than another)."""
    live = [i for i in members if c.nodes[i] is not None and c.nodes[i].alive()]

    def check():
        check_never_below_rf(partition_views(c), rf)
        st = rebalance_status(c.ports[live[0]])
        if st["settled"] != parts or st["moves"]:
            return False
        views = [placement(c.ports[i], parts) for i in live]
        reps, leaders = views[0]
        if len(reps) != parts or any(v[0] != reps for v in views):
            return False
        if any(len(r) != rf for r in reps.values()) or any(leaders[p] is None for p in reps):
            return False
        load = [sum(1 for r in reps.values() if c.ports[i] in r) for i in members]
        return max(load) - min(load) <= 1 and sum(load) == parts * rf
    return check


def keys_per_partition(port, per, prefix, parts=PARTS):
    """`per` keys of each partition, named prefix + number (CLUSTER KEYSLOT on one node)."""
    found = {p: [] for p in range(parts)}
    with RawConn(port) as conn:
        for i in range(100000):
            k = "%s%d" % (prefix, i)
            p = conn.cmd("CLUSTER", "KEYSLOT", k) * parts // 16384
            if len(found[p]) < per:
                found[p].append(k)
            if all(len(v) == per for v in found.values()):
                return found
    raise AssertionError("not %d keys for every partition" % per)


def load(port, keys_by_part, value_bytes):
    """Writes every key with a value of value_bytes (pipelined, through one node, which
    forwards each key to its partition's leader). Right after a start leaderships still move
    (elections, the leader balancer): a write answered otherwise than OK is sent again (the
    same value, so a write that did apply changes nothing)."""
    value = b"x" * value_bytes
    left = {p: list(ks) for p, ks in keys_by_part.items()}
    seen = {}

    def written():
        # One partition's keys per pipeline: a retry resends only what one partition lacks.
        for p in sorted(left):
            replies = _pipeline(port, [("SET", k, value) for k in left[p]], timeout_s=30)
            seen["last"] = [r for r in replies if r != "OK"][:3]
            left[p] = [k for k, r in zip(left[p], replies) if r != "OK"]
            if not left[p]:
                del left[p]
        return not left

    try:
        wait_for(written, 60, "every bulk key written")
    except AssertionError as e:
        raise AssertionError("%s; last errors %r" % (e, seen.get("last"))) from None


def checked_history(c, wl, ports):
    """After the workload stopped: no malformed reply, every key read on its partition's
    leader (linearizable reads, into the history), every node in `ports` converging to those
    values (its own replica's, READONLY), every acknowledged ledger write readable and no
    failed one, no unexpected error, and the whole history linearizable. Returns a summary."""
    wl.check_protocol()
    values = final_reads(c, wl)
    for port in ports:
        def same(port=port):
            replies = _pipeline(port, [("READONLY",)] + [("GET", k) for k in wl.keys])
            got = {k: (None if v is None else int(v)) for k, v in zip(wl.keys, replies[1:])}
            return got == values

        wait_for(same, 30, "port %d's replicas to converge to the final reads %r" % (port, values))
    ledger = [o for o in wl.ledger() if o.status != INFO]
    for chunk in range(0, len(ledger), 500):
        ops = ledger[chunk:chunk + 500]
        replies = _pipeline(ports[0], [("GET", o.key) for o in ops])
        for o, v in zip(ops, replies):
            assert not isinstance(v, RespError), "reading ledger key %s: %s" % (o.key, v)
            want = o.arg if o.status == OK else None
            got = None if v is None else int(v)
            assert got == want, "ledger %s (%r): expected %r, read %r" % (o.key, o, want, got)
    result = lincheck.check(wl.history)
    assert result.ok is True, "history of %d ops: %r" % (len(wl.history), result)
    assert not wl.errors, "unexpected error replies: %r" % (wl.errors[:10],)
    summary = dict(wl.stats())
    summary.update(ops_checked=result.ops_checked, ledger_checked=len(ledger))
    return summary


def restart(c, i):
    """Starts node i again after a kill -9, keeping the old log next to the new one. A node
    that joined restarts with its identity only (its data dir knows the cluster)."""
    workdir = os.path.join(c.dir, "w%d" % i)
    if i in getattr(c, "joiners", {}):
        c.restart_bare(i)  # it sets the old log aside itself
        return
    os.rename(os.path.join(workdir, "server.log"), os.path.join(workdir, "server.log.killed"))
    c.start(i)


def wait_move_under_way(c, rf=RF, deadline_s=30, avoid=None):
    """Waits until some partition's leader has the move's target as a learner (the snapshot
    and the log are being sent to it), checking at every look that no partition is below RF;
    returns (partition, target, sources) as seen at that moment. avoid: a member that must be
    neither the move's source nor its target."""
    seen = {}

    def check():
        views = partition_views(c)
        check_never_below_rf(views, rf)
        moves = moves_of(views)
        seen["moves"] = moves
        for p, (targets, sources, learners) in sorted(moves.items()):
            catching = [t for t in targets if t in learners]
            if catching and sources and avoid not in catching + sources:
                return p, catching[0], sources
        return None

    try:
        return wait_for(check, deadline_s, "a move with its target catching up", interval=0.005)
    except AssertionError as e:
        raise AssertionError("%s; moves last seen %r" % (e, seen.get("moves"))) from None


@pytest.mark.parametrize("victim", ["target", "source", "metadata-leader", "target-replaced"])
def test_kill_during_a_move(grow, victim):
    """3 nodes, 8 partitions at RF 3, each partition holding 2 MiB and its log compacted by a
    snapshot (a new replica is sent a snapshot), under a checked
    workload on two keys of every partition; a fourth node joins and gets its fair share by
    moves, one at a time (rebalance-max-moves 1). While a move's target is still a learner, kill -9
    the target, the move's source, or the metadata leader; the partitions keep serving, and
    once the victim is back every partition settles at RF on its fair share of the four
    members. target-replaced: the target stays down past replace-after-ms (3 s), so its
    replicas are placed on the three others and every partition settles there first (the
    source voted until then). No partition ever has fewer than RF voters, no acknowledged write is lost, and
    the history is linearizable."""
    flags = {"partitions": PARTS, "replication-factor": RF, "rebalance-max-moves": 1}
    if victim == "target-replaced":
        flags["replace-after-ms"] = 3000
    c = grow(3, flags)
    big = keys_per_partition(c.ports[0], 64, "bulk")
    t_load = time.monotonic()
    load(c.ports[0], big, 32 * 1024)
    t_load = time.monotonic() - t_load
    # Every node snapshots the partitions it holds, and each leader's log then keeps only a
    # few entries behind its snapshot: a new replica is sent the snapshot whatever the leader
    # still holds of its log in memory (checked on the newcomer at the end).
    for port in c.ports:
        assert cmd(port, "HALYARD", "SNAPSHOT") == "OK snapshot taken"
    wl = Workload(c.ports[:3], seed=SEED)
    # Two checked keys of every partition, so that every move carries keys of the history.
    wl.keys = [k for ks in keys_per_partition(c.ports[0], 2, "k").values() for k in ks]
    wl.start()
    try:
        wl.wait_progress(100, 20)
        j = c.add(via=0)
        wl.ports.append(c.ports[j])
        # The metadata leader is killed during a move it is neither end of (the first move
        # is often off the metadata leader, the first node started: that is the source's case).
        meta = c.names[c.leader()] if victim == "metadata-leader" else None
        p, target, sources = wait_move_under_way(c, avoid=meta)
        assert target == c.names[j], (p, target, sources)
        if victim.startswith("target"):
            x = j
        elif victim == "source":
            x = c.names.index(sources[0])
        else:
            x = c.leader()
            assert c.names[x] == meta, (c.names[x], meta)  # no election meanwhile
        c.kill(x, signal.SIGKILL)
        t_kill = time.monotonic()
        after = moves_of(partition_views(c)).get(p)
        # The partitions keep serving with the victim down: writes of every partition's keys
        # are acknowledged, and no leader's configuration drops below RF meanwhile.
        def served():
            check_never_below_rf(partition_views(c))
            per_key = {}
            for o in wl.history:
                if o.status == OK and o.kind != "get" and o.invoke >= t_kill:
                    per_key[o.key] = per_key.get(o.key, 0) + 1
            return all(per_key.get(k, 0) >= 3 for k in wl.keys)

        wait_for(served, 30, "writes acknowledged on every key with %s (%s) down" % (c.names[x], victim))
        if victim == "target" and after is not None and target in after[2]:
            # The target went down a learner: its move cannot end until it is back, and its
            # source keeps voting meanwhile; halyctl shows the move under way, source and all.
            st = rebalance_status(c.ports[(j + 1) % 4])
            shown = [m for m in st["moves"] if m["partition"] == p]
            assert shown and shown[0]["state"] == "catching-up" and shown[0]["target"] == target and \
                set(shown[0]["source"].split(",")) == set(sources), \
                "partition %d: halyctl %s; leaders' views now %s" % (p, json.dumps(st), json.dumps(partition_views(c)))
        print("\n%s: killed %s during partition %d's move %s -> %s (right after the kill: %s); "
              "every key written again within %.2fs" % (
                  victim, c.names[x], p, sources, target,
                  "targets %s, sources %s, learners %s" % after if after else "settled or no leader",
                  time.monotonic() - t_kill))
        if victim == "target-replaced":
            # Its replicas go to the members left, the one it was taking included; n4 holds
            # nothing in the map (the three hold all 24 replicas).
            wait_for(settled_everywhere(c, range(3)), 60, "every partition settled at RF without %s" % target)
        restart(c, x)
        wait_for(settled_everywhere(c, range(4)), 60, "every partition settled at RF on its fair share")
        wl.wait_progress(100, 20)
        # The newcomer was sent snapshots (counted since its last start: in the target's case
        # the moves after its restart).
        installed = scrape(c.http_port(j))[0][("halyard_snapshots_total", '{kind="installed"}')]
        assert installed >= 1, installed
    finally:
        wl.stop()
    summary = checked_history(c, wl, c.ports)
    print("kill the %s during a move, seed=%d (16 MiB loaded in %.1fs, %d snapshots installed on %s): "
          "%s\n  logs: %s" % (victim, SEED, t_load, installed, c.names[j], summary, c.dir))


@pytest.fixture
def zoned_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(extra):
        flags = {"partitions": PARTS, "replication-factor": RF, "request-timeout-ms": 1000}
        return clusters.start(ZonedCluster, len(ZONES), dict(flags, **extra))

    yield make
    clusters.stop_all()


def zones_spread(c, live):
    """A condition: every live node's CLUSTER SHARDS shows every partition on RF replicas in RF
    distinct zones, the same on every node, every partition's leader has settled on them, and
    every live node's INFO cluster counts no partition sharing a zone."""
    zone_of_port = {p: ZONES[i] for i, p in enumerate(c.ports)}

    def check():
        views = [shard_view(c.ports[i]) for i in live]
        for v in views:
            if sorted(v) != list(range(PARTS)) or v != views[0]:
                return False
            for ports in v.values():
                if len(ports) != RF or len({zone_of_port[p] for p in ports}) != RF:
                    return False
        for i in live:
            if info(c.ports[i], "cluster").get("partitions_sharing_zone") != "0":
                return False
        st = rebalance_status(c.ports[live[0]])
        return st["settled"] == PARTS and not st["moves"]
    return check


@pytest.mark.parametrize("replace_after_ms", [300000, 3000], ids=["kept", "replaced"])
def test_a_zone_lost_and_back_under_checked_history(zoned_cluster, replace_after_ms):
    """6 nodes in 3 zones, 8 partitions at RF 3, under a checked workload on two keys of every
    partition: both nodes of one zone are killed (kill -9). Every partition keeps a majority
    (two zones of three): writes to the keys of every partition go on being acknowledged
    through the survivors. With replace-after-ms short the lost zone's replicas are re-created
    on the survivors meanwhile (two zones hold three replicas, so some share one); when the
    zone comes back, every partition ends on 3 replicas in 3 zones again, as every node sees
    it. No acknowledged write is lost and the history is linearizable."""
    c = zoned_cluster({"replace-after-ms": replace_after_ms})
    everyone = list(range(len(ZONES)))
    wait_for(zones_spread(c, everyone), 60, "every partition on 3 replicas in 3 zones")
    keys = {p: [key_in(c.ports[0], p, "z%d-%s-" % (n, p)) for n in range(2)] for p in range(PARTS)}
    wl = Workload(c.ports, seed=SEED)
    wl.keys = [k for ks in keys.values() for k in ks]
    wl.start()
    try:
        wl.wait_progress(100, 20)
        lost = [i for i, z in enumerate(ZONES) if z == "east"]
        for i in lost:
            c.kill(i, signal.SIGKILL)
        t_kill = time.monotonic()
        survivors = [i for i in everyone if i not in lost]
        def served():
            per_key = {}
            for o in wl.history:
                if o.status == OK and o.kind != "get" and o.invoke >= t_kill:
                    per_key[o.key] = per_key.get(o.key, 0) + 1
            return all(per_key.get(k, 0) >= 5 for k in wl.keys)

        wait_for(served, 30, "writes acknowledged on the keys of every partition with zone east down")
        print("\nzone east down: every partition's keys written again within %.2fs" % (time.monotonic() - t_kill))
        # Every node left reports every partition with a quorum of its replicas up.
        for i in survivors:
            with RawConn(c.ports[i]) as conn:
                doc = json.loads(conn.cmd("HALYARD", "PARTITIONS", "JSON"))
            assert all(obj["quorum"] for obj in doc["partitions"]), (c.names[i], doc)
        if replace_after_ms < 300000:
            def replaced():
                v = shard_view(c.ports[survivors[0]])
                lost_ports = {c.ports[i] for i in lost}
                return len(v) == PARTS and all(len(r) == RF and not lost_ports & set(r) for r in v.values())

            wait_for(replaced, 60, "every partition re-created at RF on the surviving zones")
            wl.wait_progress(100, 20, "writes acknowledged after the replicas were re-created")
        for i in lost:
            restart(c, i)
        wait_for(zones_spread(c, everyone), 90, "every partition back on 3 replicas in 3 zones")
        wl.wait_progress(100, 20)
    finally:
        wl.stop()
    summary = checked_history(c, wl, c.ports)
    print("a zone lost and back (replace-after-ms %d), seed=%d: %s\n  logs: %s" % (
        replace_after_ms, SEED, summary, c.dir))


def test_drain_moves_replicas_off_first(grow):
    """4 nodes, 8 partitions at RF 3, under a checked workload: `halyctl node drain` of n4 marks
    it leaving, its replicas move to the other three (never a partition below RF), and only then
    does it hand its leaderships over and exit 0, so that with n4 stopped every partition still
    has RF voters. Started again, n4 clears the mark and gets its fair share back by moves.
    Without the hand-off the drain stopped n4 at once, leaving 6 partitions with 2 voters until
    replace-after-ms."""
    c = grow(4, {"partitions": PARTS, "replication-factor": RF, "rebalance-max-moves": 2})
    wait_for(settled_everywhere(c, range(4)), 60, "every partition settled at RF on 4 members")
    wl = Workload(c.ports[:3], seed=SEED)
    wl.keys = [k for ks in keys_per_partition(c.ports[0], 2, "k").values() for k in ks]
    victim = 3
    wl.start()
    try:
        wl.wait_progress(100, 20)
        exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
        drain = subprocess.Popen([exe, "-p", str(c.ports[victim]), "node", "drain"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        moved_while_up = {}

        def drained():
            if c.nodes[victim].alive():
                views = partition_views(c)
                check_never_below_rf(views)
                for p, (targets, sources, _) in moves_of(views).items():
                    if c.names[victim] in sources:
                        moved_while_up[p] = targets
            return drain.poll() is not None

        wait_for(drained, 120, "halyctl node drain to return", interval=0.05)
        out, err = drain.communicate()
        assert drain.returncode == 0, (out, err)
        assert "leaving" in out and "node stopped" in out, out
        assert c.nodes[victim].wait_exit() == 0, "a drained node exits 0"
        assert moved_while_up, "no move off %s was seen while it drained" % c.names[victim]
        # With n4 stopped, the three others hold every replica: no partition is short of one.
        views = partition_views(c)
        check_never_below_rf(views)
        assert all(c.names[victim] not in v["voters"] + v["replicas"] for v in views.values()), views
        wait_for(settled_everywhere(c, range(3)), 30, "every partition settled at RF without n4")
        wl.wait_progress(100, 20)
        restart(c, victim)
        wait_for(settled_everywhere(c, range(4)), 90, "n4 back on its fair share")
        wl.wait_progress(100, 20)
    finally:
        wl.stop()
    summary = checked_history(c, wl, c.ports)
    print("drain with hand-off: partitions moved off while n4 was up %r; %s\n  logs: %s" % (
        sorted(moved_while_up), summary, c.dir))

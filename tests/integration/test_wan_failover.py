"""Region failover (issue 18; docs/wan.md "Region failover"): an active-passive link from a
primary to a passive standby, the link cut, the standby promoted with one command, the old
primary back, over real processes on 127.0.0.1.

The primary ("east") is one node with 2 partitions; the standby ("west") has 3 nodes, so that
the promotion is seen to reach every member (each one's wan-passive is yes in its
configuration). Each link goes through a TCP proxy the test cuts (wan_pairs.CutProxy),
so that the old primary stays up and keeps taking writes during the cut, as a primary cut off
from its standby does.
"""


import json

import pytest

from cluster import is_error, SECRET
from conftest import wait_for
from test_client import install_and_build, start_client
from wan_pairs import add_link, cmd, peer, content, halyctl, halyctl_change, status, text, wait_same  # noqa: F401
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)

PARTS = 2


@pytest.fixture
def regions(wan_clusters):
    """make(keys): the primary east, linked to the standby west through a proxy, after `keys`
    SETs (k:0 ... = v1) reached west; returns east, west and the proxies to west and to east."""

    def make(keys):
        east, west = wan_clusters.two(PARTS, west={"wan-passive": "yes"}, west_nodes=3)
        to_west, to_east = wan_clusters.proxy(peer(west)), wan_clusters.proxy(peer(east))
        add_link(east, "127.0.0.1:%d" % to_west.port, "SECRET", SECRET)
        for i in range(keys):
            assert cmd(east, "SET", "k:%d" % i, "v1") == "OK"
        wait_for(lambda: shipped(east) and len(content(west)) == keys, 60,
                 "the standby to catch up", interval=0.2)
        return east, west, to_west, to_east

    return make


def shipped(c):
    """Every partition c leads on its link is at lag 0."""
    parts = status(c)["links"][0]["partitions"]
    return len(parts) == PARTS and all(p["lag_entries"] == 0 and p["state"] == "idle"
                                       for p in parts)


def writable_everywhere(c):
    for i in range(len(c.nodes)):
        r = cmd(c, "SET", "probe:%d" % i, "x", node=i)
        if r != "OK":
            return False
    return True


def test_promote_then_old_primary_steps_down_and_takes_the_new_content(regions):
    """halyctl wan promote makes every member of the standby writable; the old primary, back,
    has its batches refused -DEMOTED and steps down (its clients' writes get -READONLY); a link
    from the new primary then gives it the new primary's content: the writes it took after the
    cut are gone, on both sides."""
    east, west, to_west, to_east = regions(keys=50)
    for i in range(3):
        r = cmd(west, "SET", "k:0", "local", node=i)
        assert is_error(r, "READONLY this cluster is a passive WAN target"), r

    # The cut: the primary takes writes its standby never sees.
    to_west.cut()
    for i in range(10):
        assert cmd(east, "SET", "k:%d" % i, "after-cut") == "OK"
        assert cmd(east, "SET", "east-only:%d" % i, "lost") == "OK"

    # Promotion, with one command on one member: every member takes writes.
    p = halyctl_change(west, "wan", "promote", node=1)
    assert p.returncode == 0, p.stdout + p.stderr
    # halyctl waited until the member it asked had applied the promotion in every partition.
    st = status(west, node=1)
    assert st["writable"] and st["promotion_pending"] == [], st
    wait_for(lambda: writable_everywhere(west), 30, "every member of west to take writes")
    for i in range(3):
        wait_for(lambda: status(west, node=i)["writable"], 10, "member %d's partitions" % i)
        st = status(west, node=i)
        assert st["role"] == "primary" and st["role_by"] == "west" and st["writable"], st
        assert st["promotion_pending"] == [], st
    for i in range(5, 20):
        assert cmd(west, "SET", "k:%d" % i, "west") == "OK"
    assert cmd(west, "SET", "west-only", "kept") == "OK"

    # The old primary comes back: its link ships what it took after the cut, west refuses it
    # and east steps down.
    to_west.heal()

    def demoted():
        return is_error(cmd(east, "SET", "k:0", "late"), "READONLY this cluster was demoted")

    wait_for(demoted, 30, "east to step down", interval=0.2)
    st = status(east)
    assert st["role"] == "passive" and st["role_by"] == "west" and not st["writable"], st
    got = content(west)
    assert not any(k.startswith("east-only") for k in got), got
    assert all(got["k:%d" % i] == ("string", "v1") for i in range(5)), got

    # The new primary's link back gives east its content: east's writes after the cut are gone.
    add_link(west, "127.0.0.1:%d" % to_east.port, "SECRET", SECRET)
    final = wait_same(east, west)
    assert not any(k.startswith("east-only") for k in final)
    assert final["west-only"] == ("string", "kept")
    assert final["k:7"] == ("string", "west") and final["k:2"] == ("string", "v1"), final
    # Still passive: a client write is refused, the link's changes apply.
    assert is_error(cmd(east, "SET", "k:1", "x"), "READONLY this cluster was demoted")
    assert cmd(west, "SET", "k:1", "after-promote") == "OK"
    wait_for(lambda: text(cmd(east, "GET", "k:1")) == "after-promote", 30, "west's write on east")


def test_failback_promotes_the_old_primary_again(regions):
    """After a failover, promoting the old primary again (a later epoch) tells the current
    primary to step down when its link connects; the old primary's link resyncs it, so both
    end with the content of the cluster promoted last."""
    east, west, to_west, to_east = regions(keys=30)
    to_west.cut()
    assert cmd(east, "SET", "east-only", "lost") == "OK"
    assert cmd(west, "HALYARD", "WAN", "PROMOTE") == "OK"
    wait_for(lambda: writable_everywhere(west), 30, "every member of west to take writes")
    add_link(west, "127.0.0.1:%d" % to_east.port, "SECRET", SECRET)
    to_west.heal()
    wait_for(lambda: is_error(cmd(east, "SET", "x", "y"), "READONLY this cluster was demoted"),
             30, "east to step down", interval=0.2)
    for i in range(10):
        assert cmd(west, "SET", "k:%d" % i, "west") == "OK"
    wait_same(east, west)

    # Failback: east promoted again, later. Its link to west has no position any more (it was
    # taken away when east stepped down): it resyncs west, which it first tells to step down.
    assert cmd(east, "HALYARD", "WAN", "PROMOTE") == "OK"
    wait_for(lambda: cmd(east, "SET", "k:0", "east-again") == "OK", 30, "east to take writes")

    # No write on west meanwhile (its batch would be refused and step it down too): the tell
    # alone does it.
    wait_for(lambda: all(status(west, node=i)["role"] == "passive" for i in range(3)), 30,
             "west to step down on every member", interval=0.2)
    for i in range(3):
        r = cmd(west, "SET", "k:1", "z", node=i)
        assert is_error(r, "READONLY this cluster was demoted"), r
    assert status(west)["role_by"] == "east"
    assert status(east)["role"] == "primary"
    final = wait_same(east, west)
    assert final["k:0"] == ("string", "east-again") and final["k:5"] == ("string", "west")
    assert "east-only" not in final


def seed_002_regions(tmp_path, wan_clusters):
    """The primary east (1 node) linked to its passive standby west (1 node), and run(writes,
    interval_ms), which starts examples/failover_client.c (libhalyard) with east first in its
    cluster list and west second: (process, its output lines, their reader thread)."""
    exe, run_env, _ = install_and_build(tmp_path, "failover_client")
    east = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "east"})
    west = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "west",
                                    "wan-passive": "yes"})
    add_link(east, "127.0.0.1:%d" % peer(west), "SECRET", SECRET)

    def run(writes, interval_ms):
        return start_client(exe, run_env, [
            "--primary", "127.0.0.1:%d" % east.ports[0], "--secondary",
            "127.0.0.1:%d" % west.ports[0], "--writes", str(writes), "--interval-ms",
            str(interval_ms)])

    return east, west, run


def test_seed_002_flow_with_libhalyard(tmp_path, wan_clusters):
    """Seed 002 end to end: examples/failover_client.c (libhalyard, primary then secondary in
    its cluster list, no error handling in its loop) writes to the primary, which ships to a
    passive standby; the primary is killed and the standby promoted: the client moves there and
    its writes go on; the primary restarted steps down when the promoted cluster's link back
    reaches it, and ends with the promoted cluster's content, which holds every write the
    client made after it moved."""
    east, west, run = seed_002_regions(tmp_path, wan_clusters)
    proc = None
    try:
        proc, lines, reader = run(600, 5)
        wait_for(lambda: "progress 150" in lines or proc.poll() is not None, 60, "150 writes")
        # The primary region is lost; the operator promotes the standby.
        east.kill(0)
        p = halyctl_change(west, "wan", "promote")
        assert p.returncode == 0, p.stdout + p.stderr
        wait_for(lambda: "CLIENT_CHANGED_CLUSTER cluster=secondary" in " ".join(lines), 30,
                 "the client to be on the secondary cluster")
        moved_at = len(lines)
        assert proc.wait(timeout=120) == 0
        reader.join(10)
        done = dict(kv.split("=") for kv in
                    [l for l in lines if l.startswith("done ")][0].split()[1:])
        refused = [l for l in lines if l.startswith("write ")]
        print("client:", done, "refused or unknown:", refused)
        # Only the write in flight at the kill may be unknown, and a write reaching the standby
        # before its promotion applied is refused -READONLY (none when the promotion is first).
        assert int(done["unknown"]) <= 1, lines[-5:]
        assert all("READONLY" in l or "UNKNOWN" in l for l in refused), refused
        after = [int(l.split()[1]) for l in lines[moved_at:] if l.startswith("progress ")]
        assert after and after[-1] == 600, lines[-5:]
        west_keys = content(west)
        failed = {int(l.split()[1].rstrip(":")) for l in refused}
        last = 600 - 1
        assert all("key-%d" % i in west_keys for i in range(last - 50, last + 1)
                   if i not in failed), "the writes after the move are on the secondary"

        # The primary region comes back: it steps down and takes the new primary's content.
        east.start(0)
        add_link(west, "127.0.0.1:%d" % peer(east), "SECRET", SECRET)
        wait_for(lambda: status(east)["role"] == "passive", 30, "east to step down",
                 interval=0.2)
        r = cmd(east, "SET", "key-0", "late")
        assert is_error(r, "READONLY this cluster was demoted"), r
        final = wait_same(east, west)
        assert all(k in final for k in west_keys)

        # A client started now with the same list reaches the old primary first: its writes
        # are refused there by the role, and it moves to the promoted cluster by itself.
        proc, lines, reader = run(100, 1)
        assert proc.wait(timeout=120) == 0
        reader.join(10)
        assert "done ok=100 unknown=0 other=0" in lines, lines[-5:]
        assert "CLIENT_CHANGED_CLUSTER cluster=secondary" in " ".join(lines), lines
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def test_planned_switchover_libhalyard_follows_by_itself(tmp_path, wan_clusters):
    """Seed 002 as a planned switchover, nothing killed and the client told nothing: the
    primary stops taking writes (wan-passive yes), its link drains, the standby is promoted and
    the link back makes the old primary step down. libhalyard (examples/failover_client.c, the
    primary first in its list) moves on the role's -READONLY by itself, waits round its list
    while neither cluster takes writes, and goes on on the promoted one: every one of its
    writes succeeds, none is lost, and both clusters end with the same content (it fails when
    the client does not move on -READONLY: its writes are refused)."""
    east, west, run = seed_002_regions(tmp_path, wan_clusters)
    proc = None
    try:
        proc, lines, reader = run(400, 5)
        wait_for(lambda: "progress 100" in lines or proc.poll() is not None, 60, "100 writes")
        assert cmd(east, "CONFIG", "SET", "wan-passive", "yes") == "OK"
        wait_for(lambda: shipped(east), 30, "east's link to drain", interval=0.1)
        p = halyctl_change(west, "wan", "promote")
        assert p.returncode == 0, p.stdout + p.stderr
        add_link(west, "127.0.0.1:%d" % peer(east), "SECRET", SECRET)
        wait_for(lambda: status(east)["role"] == "passive", 30, "east to step down",
                 interval=0.2)
        assert proc.wait(timeout=120) == 0
        reader.join(10)
        assert "done ok=400 unknown=0 other=0" in lines, [l for l in lines if "write" in l]
        assert "CLIENT_CHANGED_CLUSTER cluster=secondary" in " ".join(lines), lines
        final = wait_same(east, west)
        for i in range(400):
            assert final["key-%d" % i] == ("string", "value-%d" % i), i
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()


def region_events(c):
    evs = [json.loads(text(e)) for e in cmd(c, "HALYARD", "EVENTS", "COUNT", "1000")]
    return [(e["type"], e["by"]) for e in evs if e["type"].startswith("REGION_")]


def origin_id(name):
    """The server's wan_origin_id: FNV-1a of the name, never 0."""
    h = 2166136261
    for ch in name.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h or 1


def test_role_commands_refuse_what_they_must(wan_clusters):
    """PROMOTE needs a partitioned cluster; its epoch counts promotions (1, then the epoch of
    the role held plus one: no clock); DEMOTE with a promotion older than this cluster's own,
    or of the same epoch by a cluster whose origin id is lower, is refused and changes nothing;
    a later one, or a tie won by the other name, demotes it; the same again is a no-op (0);
    PROMOTE after that makes it primary again with the next epoch; each role is an event
    (REGION_PROMOTED, REGION_DEMOTED); malformed ones are refused."""
    single = wan_clusters.cluster(1, {"cluster-name": "solo"})
    wait_for(lambda: cmd(single, "SET", "a", "1") == "OK", 30, "a leader")
    r = cmd(single, "HALYARD", "WAN", "PROMOTE")
    assert is_error(r, "ERR WAN links need a partitioned cluster"), r
    c = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "east"})
    wait_for(lambda: not is_error(cmd(c, "HALYARD", "WAN", "PROMOTE"), "TRYAGAIN"), 30,
             "a metadata leader")
    # Writable once each partition applied the promotion (its fence): until then its writes
    # answer -TRYAGAIN and WAN STATUS lists it as pending.
    wait_for(lambda: status(c)["writable"], 10, "every partition to apply the promotion")
    st = status(c)
    assert st["role"] == "primary" and st["role_by"] == "east" and st["writable"], st
    assert st["promotion_pending"] == [] and st["role_epoch"] == 1, st  # a counter, not a clock
    # (events are level-triggered from cron: each role is waited for before the next)
    wait_for(lambda: region_events(c) == [("REGION_PROMOTED", "east")], 10, "REGION_PROMOTED")
    assert cmd(c, "HALYARD", "WAN", "PROMOTE") == "OK"
    wait_for(lambda: status(c)["role_epoch"] == 2, 10, "the second promotion to apply")
    wait_for(lambda: len(region_events(c)) == 2, 10, "the second REGION_PROMOTED")
    epoch = 2
    loser, winner = "site-1619", "west"  # origin ids below and above east's
    assert origin_id(loser) < origin_id("east") < origin_id(winner)
    for older in ((str(epoch - 1), "west"), (str(epoch), loser)):
        r = cmd(c, "HALYARD", "WAN", "DEMOTE", *older)
        assert is_error(r, "ERR this cluster's promotion (epoch 2, 'east') wins over"), (older, r)
    assert status(c)["role"] == "primary"
    assert cmd(c, "HALYARD", "WAN", "DEMOTE", str(epoch), winner) == "OK"
    wait_for(lambda: status(c)["role"] == "passive", 10, "the demotion to apply")
    wait_for(lambda: len(region_events(c)) == 3, 10, "REGION_DEMOTED")
    assert cmd(c, "HALYARD", "WAN", "DEMOTE", str(epoch), winner) == 0
    assert cmd(c, "HALYARD", "WAN", "DEMOTE", str(epoch), loser) == 0
    assert cmd(c, "HALYARD", "WAN", "DEMOTE", str(epoch + 5), "north") == "OK"
    wait_for(lambda: status(c)["role_epoch"] == epoch + 5, 10, "the later demotion to apply")
    assert status(c)["role_by"] == "north"
    wait_for(lambda: len(region_events(c)) == 4, 10, "REGION_DEMOTED by north")
    assert is_error(cmd(c, "SET", "a", "1"), "READONLY this cluster was demoted")
    assert cmd(c, "HALYARD", "WAN", "PROMOTE") == "OK"
    wait_for(lambda: status(c)["role"] == "primary", 10, "the promotion to apply")
    assert status(c)["role_epoch"] == epoch + 6
    wait_for(lambda: cmd(c, "SET", "a", "1") == "OK", 10, "the partitions to apply it")
    wait_for(lambda: region_events(c) == [("REGION_PROMOTED", "east"),
                                          ("REGION_PROMOTED", "east"),
                                          ("REGION_DEMOTED", "west"),
                                          ("REGION_DEMOTED", "north"),
                                          ("REGION_PROMOTED", "east")], 10,
             "the events of each role")
    for bad in (("DEMOTE", "x", "west"), ("DEMOTE", "0", "west"), ("DEMOTE", "5", "a b"),
                ("DEMOTE", "5"), ("PROMOTE", "now")):
        r = cmd(c, "HALYARD", "WAN", *bad)
        assert is_error(r, "ERR"), (bad, r)


def test_promotion_in_place_of_one_source_keeps_the_other(wan_clusters):
    """One standby (west, wan-passive yes) backs up two primaries, east (keys e:*) and north
    (keys n:*). East is cut off and west promoted FROM east: east's batches are refused and east
    steps down when it is back, while north's link goes on, north stays writable and its later
    writes reach west (it fails without FROM: west then refuses north's batches -DEMOTED and
    north steps down too)."""
    west = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "west",
                                    "requirepass": "pw", "wan-passive": "yes"})
    east = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "east",
                                    "requirepass": "pe"})
    north = wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": "north",
                                     "requirepass": "pn"})
    east_to_west = wan_clusters.proxy(peer(west))
    add_link(east, "127.0.0.1:%d" % east_to_west.port, "SECRET", SECRET, "KEYS", "e:*")
    add_link(north, "127.0.0.1:%d" % peer(west), "SECRET", SECRET, "KEYS", "n:*")
    for i in range(10):
        assert cmd(east, "SET", "e:%d" % i, "v1") == "OK"
        assert cmd(north, "SET", "n:%d" % i, "v1") == "OK"
    wait_for(lambda: len(content(west)) == 20, 60, "west to hold both primaries' keys",
             interval=0.2)

    east_to_west.cut()
    assert cmd(east, "SET", "e:lost", "after-cut") == "OK"
    p = halyctl_change(west, "wan", "promote", "--from", "east")
    assert p.returncode == 0, p.stdout + p.stderr
    st = status(west)
    assert st["role"] == "primary" and st["role_from"] == "east" and st["writable"], st
    assert "in place of 'east' only" in halyctl(west, "wan", "status").stdout

    # North goes on: its writes reach west, and it is never told to step down.
    for i in range(10, 20):
        assert cmd(north, "SET", "n:%d" % i, "v2") == "OK"
    wait_for(lambda: all(content(west).get("n:%d" % i) == ("string", "v2") for i in range(10, 20)),
             30, "north's later writes on west", interval=0.2)
    # The target shows a batch before the source hears it acknowledged: waited for.
    wait_for(lambda: shipped(north), 30, "north's link at lag 0", interval=0.2)
    st = status(north)
    assert st["role"] == "none" and st["writable"], st
    assert cmd(north, "SET", "n:last", "ok") == "OK"

    # East comes back: its batches are refused and it steps down; west never holds its writes
    # after the cut.
    east_to_west.heal()
    wait_for(lambda: is_error(cmd(east, "SET", "e:late", "x"), "READONLY this cluster was demoted"),
             30, "east to step down", interval=0.2)
    st = status(east)
    assert st["role"] == "passive" and st["role_by"] == "west", st
    wait_for(lambda: content(west).get("n:last") == ("string", "ok"), 30, "north's last write")
    assert "e:lost" not in content(west)
    st = status(north)
    assert st["role"] == "none" and st["writable"], st


def test_libhalyard_follows_the_region_failover_priority(tmp_path, wan_clusters):
    """region-failover-priority (issue 18, "libhalyard's cluster list follows region
    priority"): three clusters named as the client names them (primary, secondary, tertiary:
    examples/failover_client.c's list, in that order); the primary says the order is primary,
    tertiary, secondary (CLUSTER INFO). When the primary is lost the client moves to tertiary
    first, never to secondary (a passive standby here, which would refuse its writes and send
    it on: without the priority the client goes there first and CLIENT_CHANGED_CLUSTER names
    it). The setting is checked (a list of cluster names, none twice) and published."""
    exe, run_env, _ = install_and_build(tmp_path, "failover_client")
    prio = "primary,tertiary,secondary"
    primary = wan_clusters.cluster(1, {"cluster-name": "primary",
                                       "region-failover-priority": prio})
    secondary = wan_clusters.cluster(1, {"cluster-name": "secondary", "wan-passive": "yes"})
    tertiary = wan_clusters.cluster(1, {"cluster-name": "tertiary"})
    info = text(cmd(primary, "CLUSTER", "INFO"))
    assert "halyard_region:primary\r\n" in info, info
    assert "halyard_region_failover_priority:%s\r\n" % prio in info, info
    for bad in ("primary,,secondary", "primary,primary", "a b", "primary,"):
        r = cmd(primary, "CONFIG", "SET", "region-failover-priority", bad)
        assert is_error(r, "ERR") and "region-failover-priority" in str(r), (bad, r)
    assert text(cmd(primary, "CONFIG", "GET", "region-failover-priority")[1]) == prio
    assert status(primary)["region_failover_priority"] == prio
    assert "region failover priority: %s" % prio in text(cmd(primary, "HALYARD", "WAN", "STATUS"))
    proc = None
    try:
        proc, lines, reader = start_client(exe, run_env, [
            "--primary", "127.0.0.1:%d" % primary.ports[0],
            "--secondary", "127.0.0.1:%d" % secondary.ports[0],
            "--tertiary", "127.0.0.1:%d" % tertiary.ports[0],
            "--writes", "300", "--interval-ms", "5"])
        wait_for(lambda: "progress 100" in lines or proc.poll() is not None, 60, "100 writes")
        primary.kill(0)
        assert proc.wait(timeout=120) == 0
        reader.join(10)
        changed = [l for l in lines if l.startswith("CLIENT_CHANGED_CLUSTER")]
        assert changed and all("cluster=tertiary" in l for l in changed), changed
        done = [l for l in lines if l.startswith("done ")][0]
        assert int(dict(kv.split("=") for kv in done.split()[1:])["unknown"]) <= 1, done
        assert int(cmd(tertiary, "DBSIZE")) >= 150
        assert int(cmd(secondary, "DBSIZE")) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()

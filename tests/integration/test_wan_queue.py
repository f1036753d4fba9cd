"""A WAN link's outbox full (issue 18; docs/wan.md "Resync", wan-queue-full): with
block-writes the source refuses its clients' writes to the partitions whose outbox is full
until the target catches up, and no resync is needed; with drop-and-resync (the default) the
writes go on and the target is resynced after. Both on the same pair of clusters, the setting
changed at runtime, over real processes on 127.0.0.1.

The source has 1 node and 2 partitions with a 64 KiB outbox, the target 1 node and 2
partitions; the link goes through a TCP proxy the test cuts (wan_pairs.CutProxy).
"""

import json
import urllib.request

import pytest

from cluster import is_error, SECRET
from conftest import RawConn, wait_for
from wan_pairs import add_link, cmd, content, peer, halyctl, parts, text
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)
from wan_pairs import wait_same as wait_same_content

PARTS = 2
VALUE = "v" * 2048


@pytest.fixture
def pair(wan_clusters):
    def make():
        east, west = wan_clusters.two(PARTS, east={"wan-outbox-max-bytes": "64kb",
                                                   "wan-queue-full": "block-writes"})
        return east, west, wan_clusters.proxy(peer(west))

    return make


def idle(c):
    ps = parts(c)
    return len(ps) == PARTS and all(p["lag_entries"] == 0 and p["state"] == "idle" for p in ps)


def wait_same(east, west):
    wait_same_content(east, west, also=lambda: idle(east))


def test_block_writes_then_drop_and_resync(pair):
    """block-writes: writes to a partition whose outbox is full get -BUSY (reads go on), and
    resume once the target is back and has caught up, with no resync; drop-and-resync, set at
    runtime: every write is taken during the cut and the target is resynced after."""
    east, west, to_west = pair()
    add_link(east, "127.0.0.1:%d" % to_west.port, "SECRET", SECRET)
    assert cmd(east, "SET", "before", "1") == "OK"
    wait_for(lambda: text(cmd(west, "GET", "before")) == "1", 30, "the link to ship")
    wait_for(lambda: idle(east), 30, "the link to be idle", interval=0.1)
    # (the link may start with a resync of "before", when it was written before the link was
    # known to the partition's leader: counted from here)
    resyncs0 = {p["partition"]: p["resyncs"] for p in parts(east)}

    # block-writes: the link cut, writes fill the outboxes until they are refused.
    to_west.cut()
    taken, refused = [], None
    for i in range(400):
        r = cmd(east, "SET", "k:%d" % i, VALUE)
        if is_error(r, "BUSY"):
            refused = ("k:%d" % i, r)
            break
        assert r == "OK", r
        taken.append("k:%d" % i)
    assert refused is not None, "no write refused after %d writes of 2 KiB" % len(taken)
    assert "wan-queue-full block-writes" in refused[1], refused
    assert len(taken) * len(VALUE) >= 64 * 1024, len(taken)
    r = cmd(east, "SET", refused[0], "again")
    assert is_error(r, "BUSY"), r  # still full: the target is away
    assert text(cmd(east, "GET", "k:0")) == VALUE  # reads go on
    ps = parts(east)
    assert any(p["writes_blocked"] for p in ps), ps
    assert all(p["state"] != "resync-needed" for p in ps), ps  # nothing was dropped

    # The target back: the outbox drains, writes are taken again, and no resync ran.
    to_west.heal()
    wait_for(lambda: cmd(east, "SET", refused[0], "after") == "OK", 60, "writes to resume",
             interval=0.2)
    wait_same(east, west)
    got = content(west)
    assert all(got[k] == ("string", VALUE) for k in taken)
    assert got[refused[0]] == ("string", "after")
    # Every partition takes writes again once its position is committed (lazily, every 200
    # ms) and the outbox trimmed below the limit.
    wait_for(lambda: not any(p["writes_blocked"] for p in parts(east)), 30,
             "every partition to take writes again", interval=0.1)
    ps = parts(east)
    assert all(p["resyncs"] == resyncs0[p["partition"]] for p in ps), json.dumps(ps)

    # drop-and-resync, at runtime: the same cut, every write is taken, the target resyncs.
    assert cmd(east, "CONFIG", "SET", "wan-queue-full", "drop-and-resync") == "OK"
    to_west.cut()
    for i in range(400):
        assert cmd(east, "SET", "d:%d" % i, VALUE) == "OK"
    assert not any(p["writes_blocked"] for p in parts(east))
    to_west.heal()
    wait_same(east, west)
    # 800 KB of changes did not fit in the 64 KiB outboxes: the target got them by a resync.
    assert sum(p["resyncs"] - resyncs0[p["partition"]] for p in parts(east)) >= 1


def test_resync_progress_in_halyctl_status(pair):
    """A resync held up by a cut link shows in `halyctl wan status` as a bar at 0% with its
    phase, and the link down in /health's score and reasons; healed, it ends at 100% (JSON
    resync_percent) with the target's content the source's, and the reason is gone."""
    east, west, to_west = pair()
    wait_for(lambda: cmd(east, "SET", "k:0", "0") == "OK", 30, "east to take writes")
    with RawConn(east.ports[0], timeout=10.0) as r:
        r.cmd("AUTH", "pe")
        for i in range(1, 300):
            assert r.cmd("SET", "k:%d" % i, str(i)) == "OK"
    to_west.cut()
    add_link(east, "127.0.0.1:%d" % to_west.port, "SECRET", SECRET)
    out = {}

    def held():
        p = halyctl(east, "wan", "status")
        out["text"] = p.stdout
        return p.stdout.count("resync (scan) [....................]   0%") == PARTS

    try:
        wait_for(held, 30, "both partitions' resyncs to show at 0%", interval=0.2)
    except AssertionError:
        print(out.get("text"))
        raise
    assert all(p["state"] == "resyncing" and p["resync_percent"] == 0 and
               p["resync_of_keys"] > 100 for p in parts(east))
    assert {(e["type"], e["partition"]) for e in wan_events(east)} >= {
        ("RESYNC_STARTED", 0), ("RESYNC_STARTED", 1)}
    assert "WAN_LINK_DOWN" in [e["type"] for e in wan_events(east)]
    # /health serves the observation the shell publishes each cron tick: wait for one that has
    # both partitions' links (CI once read one without them).
    wl = wait_for(lambda: len(health(east)["wanLinks"]) == PARTS and health(east)["wanLinks"],
                  30, "/health to list both partitions' links")
    assert all(x["link"] == "dr" and x["state"] == "down" for x in wl), wl
    # The link down lowers the node's health score, with the link named (docs/operations.md
    # "Health score").
    h = wait_for(lambda: "WAN link 'dr' down (2 partitions)" in health(east)["healthReasons"]
                 and health(east), 30, "/health to name the link down")
    assert h["healthScore"] <= 90, h
    to_west.heal()
    wait_same(east, west)
    assert all(p["resync_percent"] == 100 and p["resyncs"] == 1 for p in parts(east))
    evs = wan_events(east)
    types = [e["type"] for e in evs]
    assert types.index("WAN_LINK_UP") > types.index("WAN_LINK_DOWN"), types
    done = {e["partition"]: e for e in evs if e["type"] == "RESYNC_DONE"}
    assert sorted(done) == [0, 1] and sum(e["keys"] for e in done.values()) == 300, done
    wait_for(lambda: all(x["state"] == "up" for x in health(east)["wanLinks"]), 30,
             "/health to show the link up")
    wait_for(lambda: not any("WAN link" in r for r in health(east)["healthReasons"]), 30,
             "the link's reason to leave the health score")


def wan_events(c):
    evs = [json.loads(text(e)) for e in cmd(c, "HALYARD", "EVENTS", "COUNT", "1000")]
    return [e for e in evs if e["type"].startswith(("WAN_", "RESYNC_"))]


def health(c):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % c.http_port(0), timeout=10) as r:
        return json.loads(r.read())

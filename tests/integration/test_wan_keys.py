"""A link that ships only some keys (issue 18; docs/wan.md "Only some keys": HALYARD WAN ADD ...
KEYS pattern, halyctl wan add --keys): the changes whose first key matches are shipped, the
link's resync copies only the matching keys and deletes at the target only the matching keys
it holds in the source's slots. Real processes on 127.0.0.1: a source of 1 node and 2
partitions, a target of 1 node and 2 partitions.
"""

import json

import pytest

from cluster import SECRET, is_error
from conftest import RawConn, wait_for
from wan_pairs import cmd, content, peer, halyctl_change, parts, status, text
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)

PARTS = 2


@pytest.fixture
def pair(wan_clusters):
    return lambda: wan_clusters.two(PARTS)


def idle(c):
    ps = parts(c)
    return len(ps) == PARTS and all(p["state"] == "idle" and p["lag_entries"] == 0 for p in ps)


def test_keys_pattern_ships_and_resyncs_only_matching_keys(pair):
    """--keys 'user:*': the resync of a source holding user:* and tmp:* keys copies the user:*
    ones, deletes the target's user:* key the source lacks and keeps its tmp:own; later
    changes to tmp:* are never shipped, yet the link reaches lag 0 and its outbox empties."""
    east, west = pair()
    wait_for(lambda: cmd(east, "SET", "user:0", "0") == "OK", 30, "east to take writes")
    for i in range(1, 40):
        assert cmd(east, "SET", "user:%d" % i, str(i)) == "OK"
        assert cmd(east, "SET", "tmp:%d" % i, str(i)) == "OK"
    wait_for(lambda: cmd(west, "SET", "tmp:own", "w") == "OK", 30, "west to take writes")
    assert cmd(west, "SET", "user:stale", "w") == "OK"
    p = halyctl_change(east, "wan", "add", "dr", "--to", "127.0.0.1:%d" % peer(west), "--secret",
                SECRET, "--keys", "user:*")
    assert p.returncode == 0, p.stdout + p.stderr
    assert status(east)["links"][0]["keys"] == "user:*"

    def resynced():
        got = content(west)
        return (idle(east) and "user:stale" not in got and
                all(got.get("user:%d" % i) == ("string", str(i)) for i in range(40)))

    wait_for(resynced, 60, "the resync of the user:* keys", interval=0.2)
    assert sum(p["resyncs"] for p in parts(east)) >= 1
    got = content(west)
    assert got["tmp:own"] == ("string", "w"), got
    assert not any(k.startswith("tmp:") and k != "tmp:own" for k in got), got

    # Changes after the resync: only user:* ones travel.
    for i in range(40, 240):
        assert cmd(east, "SET", "tmp:%d" % i, "x" * 200) == "OK"
    assert cmd(east, "SET", "user:last", "1") == "OK"
    assert cmd(east, "DEL", "user:1") == 1
    assert cmd(east, "INCR", "user:c") == 1

    def shipped():
        got = content(west)
        return (got.get("user:last") == ("string", "1") and "user:1" not in got and
                got.get("user:c") == ("string", "1") and idle(east))

    wait_for(shipped, 60, "the user:* changes on west", interval=0.2)
    got = content(west)
    assert not any(k.startswith("tmp:") and k != "tmp:own" for k in got), got
    # The changes left out count as shipped: the position moves, every replica trims them.
    wait_for(lambda: all(p["outbox_bytes"] < 2000
                         for p in parts(east)), 30,
             "the outboxes to be trimmed", interval=0.2)


def test_role_per_link_standby_of_one_primary_of_another(wan_clusters):
    """Three clusters, east -> west -> north, both links active-passive (docs/multi-region.md
    "A role per link"): west is east's standby for the keys east ships to it (its link's
    --keys 'e:*'; wan-passive-keys 'e:*' on west) and north's primary for its own ('w:*').
    West's clients' writes to e:* keys, and writes naming no key, are refused -READONLY
    (a MULTI/EXEC naming one too), its writes to w:* keys are taken and reach north; east's
    e:* keys reach west and are never relayed to north. (Without wan-passive-keys west takes
    the e:* write; with wan-passive yes it refuses the w:* ones: both checked.)"""
    def one(name, extra=None):
        return wan_clusters.cluster(1, dict({"partitions": PARTS, "cluster-name": name},
                                            **(extra or {})))

    east, west, north = one("east"), one("west"), one("north")
    for c in (east, west, north):
        wait_for(lambda: cmd(c, "SET", "probe", "1") == "OK", 30, "the cluster to take writes")
        assert cmd(c, "DEL", "probe") == 1
    # Before the setting, west takes an e:* write (the whole cluster is writable).
    assert cmd(west, "SET", "e:early", "w") == "OK"
    assert cmd(west, "CONFIG", "SET", "wan-passive-keys", "e:*") == "OK"
    assert cmd(west, "CONFIG", "GET", "wan-passive-keys") == [b"wan-passive-keys", b"e:*"]
    r = cmd(west, "CONFIG", "SET", "wan-passive-keys", "x" * 129)
    assert is_error(r, "ERR"), r
    p = halyctl_change(east, "wan", "add", "dr", "--to", "127.0.0.1:%d" % peer(west),
                       "--secret", SECRET, "--keys", "e:*")
    assert p.returncode == 0, p.stdout + p.stderr
    p = halyctl_change(west, "wan", "add", "dr", "--to", "127.0.0.1:%d" % peer(north),
                       "--secret", SECRET, "--keys", "w:*")
    assert p.returncode == 0, p.stdout + p.stderr
    for i in range(30):
        assert cmd(east, "SET", "e:%d" % i, "east-%d" % i) == "OK"
        assert cmd(west, "SET", "w:%d" % i, "west-%d" % i) == "OK"
    # West refuses its clients' writes where it is east's standby, and keyless writes.
    for args in (("SET", "e:0", "mine"), ("MSET", "w:x", "1", "e:1", "2"), ("DEL", "e:2"),
                 ("FLUSHALL",), ("EVAL", "return 1", "0")):
        r = cmd(west, *args)
        assert is_error(r, "READONLY the keys matching 'e:*' are a passive WAN copy"), (args, r)
    with RawConn(west.ports[0], timeout=5.0) as r:
        assert r.cmd("MULTI") == "OK"
        assert r.cmd("SET", "w:{t}x", "1") == "QUEUED"
        assert r.cmd("SET", "e:{t}x", "1") == "QUEUED"
        got = r.cmd("EXEC")
        assert is_error(got, "READONLY") or is_error(got, "EXECABORT"), got
        assert r.cmd("MULTI") == "OK"
        assert r.cmd("SET", "w:{t}x", "1") == "QUEUED"
        assert r.cmd("INCR", "w:{t}n") == "QUEUED"
        assert r.cmd("EXEC") == ["OK", 1], "a transaction of w:* keys only runs"
    assert cmd(west, "GET", "e:{t}x") is None
    # A session opens (libhalyard's writes to w:* keys go in one), and runs w:* writes only.
    with RawConn(west.ports[0], timeout=5.0) as r:
        slot = r.cmd("CLUSTER", "KEYSLOT", "{t}")
        sid = r.cmd("HY.SESSION", "OPEN", "60000", "SLOT", str(slot))
        assert isinstance(sid, int) and sid > 0, sid
        assert r.cmd("HY.REQ", str(sid), "1", "SET", "w:{t}s", "1") == "OK"
        got = r.cmd("HY.REQ", str(sid), "2", "SET", "e:{t}s", "1")
        assert is_error(got, "READONLY the keys matching"), got

    def arrived():
        w, n = content(west), content(north)
        return (all(w.get("e:%d" % i) == ("string", "east-%d" % i) for i in range(30)) and
                all(n.get("w:%d" % i) == ("string", "west-%d" % i) for i in range(30)) and
                n.get("w:{t}x") == ("string", "1") and n.get("w:{t}n") == ("string", "1"))

    wait_for(arrived, 60, "east's keys on west and west's on north", interval=0.2)
    n = content(north)
    assert not any(k.startswith("e:") for k in n), n  # no relay: link north to east for them
    # Shown in WAN STATUS (text and JSON).
    st = json.loads(text(cmd(west, "HALYARD", "WAN", "STATUS", "JSON")))
    assert st["passive_keys"] == "e:*" and st["writable"] is True, st
    out = text(cmd(west, "HALYARD", "WAN", "STATUS"))
    assert "region role: passive for the keys matching 'e:*'" in out, out
    # The whole-cluster setting still refuses every write.
    assert cmd(west, "CONFIG", "SET", "wan-passive", "yes") == "OK"
    assert is_error(cmd(west, "SET", "w:late", "1"), "READONLY this cluster is a passive WAN")
    assert cmd(west, "CONFIG", "SET", "wan-passive", "no") == "OK"
    assert cmd(west, "SET", "w:late", "1") == "OK"

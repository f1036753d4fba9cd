"""A link that ships only some keys (issue 18; docs/wan.md "Only some keys": HALYARD WAN ADD ...
KEYS pattern, halyctl wan add --keys): the changes whose first key matches are shipped, the
link's resync copies only the matching keys and deletes at the target only the matching keys
it holds in the source's slots. Real processes on 127.0.0.1: a source of 1 node and 2
partitions, a target of 1 node and 2 partitions.
"""

import pytest

from cluster import SECRET
from conftest import wait_for
from wan_pairs import cmd, content, halyctl_change, parts, status
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
    p = halyctl_change(east, "wan", "add", "dr", "--to", "127.0.0.1:%d" % west.ports[0], "--secret",
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

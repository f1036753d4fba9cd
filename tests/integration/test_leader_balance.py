"""Leader balance with a replication factor below the member count (issue 11 item 7, issue 12
"leaderships balanced after a join"): 5 nodes, RF 3, 16 partitions.

Each node holds about 3/5 of the partitions, so no node sees every partition's leader; the
metadata group's leader plans the leadership transfers from every member's counts
(docs/partitioning.md "Leader balance"). A node killed (kill -9) and restarted comes back
leading nothing and gets its share back; a sixth node that joins gets replicas by moves, then
leaderships. Both under a checked workload, whose history must stay linearizable.

Balanced, as this file checks it independently of the server's own count: every partition
has a leader, and each member leads within its fair share +-1, its fair share being the sum,
over the partitions the map places on it, of 1 / (that partition's replicas).

Real processes on 127.0.0.1.
"""

import json
import signal
import time

import pytest

from cluster import info
from conftest import wait_for
from test_membership import SEED, grow, halyctl  # noqa: F401 - grow is a fixture
from test_moves import partition_views, restart
from workload import Workload, verify_partitioned

pytestmark = pytest.mark.halyard_only

PARTS = 16
RF = 3
FLAGS = {"partitions": PARTS, "replication-factor": RF}
BALANCE_DEADLINE_S = 90


def leader_counts(c):
    """(leads, fair, views): leaderships per member name and each member's fair share, from
    the leaders' HALYARD PARTITIONS JSON (the highest term of each partition); None while a
    partition has no leader in view or its leader's voters are not the map's replicas (a
    move under way)."""
    views = partition_views(c)
    if len(views) != PARTS:
        return None
    leads = {name: 0 for i, name in enumerate(c.names) if c.nodes[i] is not None}
    fair = dict.fromkeys(leads, 0.0)
    for p, v in views.items():
        if sorted(v["voters"]) != sorted(v["replicas"]):
            return None
        leads[v["leader"]] += 1
        for r in v["replicas"]:
            fair[r] += 1.0 / len(v["replicas"])
    return leads, fair, views


def spread(leads, fair):
    return " ".join("%s %d/%.2f" % (m, leads[m], fair[m]) for m in sorted(leads))


def wait_balanced(c, what, deadline_s=BALANCE_DEADLINE_S):
    """Waits until every member leads within its fair share +-1; returns (seconds, counts,
    the first spread seen)."""
    t0 = time.monotonic()
    last = {}

    def check():
        got = leader_counts(c)
        if got is None:
            return False
        leads, fair, _ = got
        last["spread"] = spread(leads, fair)
        last.setdefault("first", last["spread"])
        return all(abs(leads[m] - fair[m]) <= 1.0 + 1e-9 for m in leads) and got

    try:
        got = wait_for(check, deadline_s, "leaderships balanced %s" % what, interval=0.2)
    except AssertionError as e:
        raise AssertionError("%s; last seen (led/fair share) %s" % (e, last.get("spread"))) from None
    return time.monotonic() - t0, got, last["first"]


def status_shows_balance(c, via):
    """halyctl cluster status (text and --json) through node `via` reports the balance."""
    r = halyctl(c.ports[via], "cluster", "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "leader fair share per node:" in r.stdout, r.stdout
    text = r.stdout
    r = halyctl(c.ports[via], "--json", "cluster", "status")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["leader_fair_share"]) >= {c.names[i] for i in range(len(c.names))}, doc
    return doc, text


def test_leaderships_balanced_after_a_restart_and_a_join(grow):
    """5 nodes, RF 3, 16 partitions, a checked workload: the node leading most is killed
    (kill -9) and restarted, then a sixth node joins; each time every member ends within its
    fair share +-1 of the leaderships (the restarted node and the new one lead nothing at
    first), and halyctl cluster status says so. No acknowledged write is lost and the history
    is linearizable."""
    c = grow(5, FLAGS)
    took, (leads, fair, _), _ = wait_balanced(c, "after the start")
    print("\nafter the start (%.1f s): %s" % (took, spread(leads, fair)))
    wl = Workload(c.ports, keys=8, seed=SEED).start()
    report = []
    try:
        wl.wait_progress(100, 30)
        victim = c.names.index(max(leads, key=lambda m: leads[m]))
        c.kill(victim, signal.SIGKILL)
        wl.wait_progress(50, 30, "writes acknowledged with %s down" % c.names[victim])
        restart(c, victim)
        took, (leads, fair, _), before = wait_balanced(c, "after %s's restart" % c.names[victim])
        assert leads[c.names[victim]] >= 1, spread(leads, fair)
        report.append("restart of %s: first seen %s; balanced after %.1f s: %s" %
                      (c.names[victim], before, took, spread(leads, fair)))
        wl.wait_progress(50, 30)

        j = c.add(via=0)
        wl.ports.append(c.ports[j])
        t0 = time.monotonic()

        def replicas_spread():
            # Fair-share rebalancing ends when no member holds two replicas more than another.
            views = partition_views(c)
            if len(views) != PARTS or any(sorted(v["voters"]) != sorted(v["replicas"]) for v in views.values()):
                return False
            holds = [sum(1 for v in views.values() if name in v["replicas"]) for name in c.names]
            return max(holds) - min(holds) <= 1

        wait_for(replicas_spread, BALANCE_DEADLINE_S, "%s to hold its fair share of replicas" % c.names[j])
        took, (leads, fair, _), before = wait_balanced(c, "after %s joined" % c.names[j])
        assert leads[c.names[j]] >= 1, spread(leads, fair)
        report.append("join of %s: replicas placed after %.1f s, first seen %s; balanced %.1f s later: %s" %
                      (c.names[j], time.monotonic() - t0 - took, before, took, spread(leads, fair)))
        _, text = status_shows_balance(c, 0)
        wl.wait_progress(50, 30)
    finally:
        wl.stop()
    ledger, result = verify_partitioned(c, wl)
    # The server's own count agrees once the workload is over and nothing moves.
    wait_for(lambda: status_shows_balance(c, 0)[0]["leaders_balanced"] is True, 30,
             "halyctl cluster status --json to report leaders_balanced")
    print("\n".join(report))
    print(text)
    print("history: %s ledger=%d ops=%d" % (dict(wl.stats()), len(ledger), result.ops_checked))


def test_paused_rebalancing_moves_no_leadership(grow):
    """halyctl cluster rebalance pause holds leaderships where they are too: a node killed
    (kill -9) and restarted keeps leading nothing (the metadata leader logs that it holds the
    transfers back) until halyctl cluster rebalance resume, then gets its share."""
    c = grow(5, FLAGS)
    wait_balanced(c, "after the start")
    wait_for(lambda: halyctl(c.ports[1], "cluster", "rebalance", "pause").returncode == 0, 30,
             "halyctl cluster rebalance pause to succeed")
    wait_for(lambda: all(info(p, "cluster")["rebalance"] == "paused" for p in c.ports), 30,
             "every node to report rebalancing paused")
    leads, _, _ = wait_for(lambda: leader_counts(c), 30, "every partition's leader in view")
    victim = c.names.index(max(leads, key=lambda m: leads[m]))
    c.kill(victim, signal.SIGKILL)
    # Its partitions elect among the others first (restarted at once, it could win them back).
    wait_for(lambda: leader_counts(c) is not None, 30, "every partition led without %s" % c.names[victim])
    restart(c, victim)

    def held_back():  # in the log of the metadata leader, whichever node it is
        for s in c.nodes:
            with open(s.log_path) as f:
                if "balance: paused while leaderships are uneven" in f.read():
                    return True
        return False

    wait_for(held_back, 30, "the metadata leader to hold the leadership transfers back")
    got = wait_for(lambda: leader_counts(c), 30, "every partition's leader in view")
    assert got[0][c.names[victim]] == 0, spread(*got[:2])
    wait_for(lambda: halyctl(c.ports[2], "cluster", "rebalance", "resume").returncode == 0, 30,
             "halyctl cluster rebalance resume to succeed")
    took, (leads, fair, _), first = wait_balanced(c, "after resume")
    assert leads[c.names[victim]] >= 1, spread(leads, fair)
    print("\npaused: %s; balanced %.1f s after resume: %s" % (first, took, spread(leads, fair)))

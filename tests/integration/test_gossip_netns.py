"""Gossip under a real network partition: three nodes in network namespaces of their own
(netns.py), the leader's cable pulled (its bridge port detached: packets vanish both ways).
The majority suspects it, elects a new leader and declares it failed; the cut-off node loses
its quorum ("partition detected": QUORUM_LOST, pushed to its __halyard__:events subscriber),
its /health/ready answers 503 with the reason and /health says clusterSafe false, and a
quorum rule refuses even its stale (READONLY) reads with -QUORUM. After the heal
the majority sees it ALIVE again and it regains its quorum ("partition healed"), ready 200.
Every step waits with a deadline; the whole takes about 10 s."""

import http.client
import json

import pytest

from conftest import wait_for
from netns import NetnsCluster, in_ns

pytestmark = pytest.mark.halyard_only

CHANNEL = "__halyard__:events"


def events(c, i):
    return [json.loads(e) for e in c.cmd(i, "HALYARD", "EVENTS", "COUNT", "1000")]


def types_after(evs, first_id, **match):
    return [e["type"] for e in evs
            if e["id"] > first_id and all(e.get(k) == v for k, v in match.items())]


def all_alive(c, i):
    """Node i's gossip holds both others alive and none suspect (start-up's suspicions of
    members not yet connected are over)."""
    text = c.cmd(i, "INFO", "cluster").decode()
    kv = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
    return kv.get("gossip_members_alive") == "2" and kv.get("gossip_members_suspect") == "0"


def http_get(c, i, path):
    def get():
        conn = http.client.HTTPConnection(c.addrs[i], c.http_port(i), timeout=2)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()
    return in_ns(c.ns[i], get)


def test_partitioned_leader_is_failed_by_the_majority_and_loses_quorum(tmp_path_factory, clusters):
    import redis

    c = NetnsCluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    cut, rest = c.names[li], [i for i in range(3) if i != li]
    for i in range(3):
        wait_for(lambda i=i: "LEADER_CHANGED" in types_after(events(c, i), 0, leader=cut), 10,
                 "%s to know %s leads" % (c.names[i], cut))
    for i in range(3):
        wait_for(lambda i=i: all_alive(c, i), 10, "%s to hold every member alive" % c.names[i])
    assert http_get(c, li, "/health/ready")[0] == 200
    assert c.cmd(li, "SET", "k", "v") == "OK"
    # Split-brain protection: stale reads too need two live members on this node.
    assert c.cmd(li, "CONFIG", "SET", "quorum-rules", "majority:2:read-write") == "OK"

    def stale_get():
        with c.conn(li) as r:
            assert r.cmd("READONLY") == "OK"
            return r.cmd("GET", "k")
    assert stale_get() == b"v"
    marks = {i: events(c, i)[-1]["id"] for i in range(3)}
    # The cut-off node's own subscriber: it hears its node's view throughout the partition.
    sub = in_ns(c.ns[li], lambda: redis.Redis(host=c.addrs[li], port=c.ports[li],
                                              socket_timeout=5).pubsub())
    in_ns(c.ns[li], lambda: sub.subscribe(CHANNEL))
    pushed = []

    def pushed_types():
        while True:
            m = sub.get_message(timeout=0.05)
            if m is None:
                return [e["type"] for e in pushed]
            if m["type"] == "message":
                pushed.append(json.loads(m["data"]))

    c.isolate(li)
    try:
        for i in rest:
            def failed(i=i):
                got = types_after(events(c, i), marks[i])
                return "MEMBER_FAILED" in got and "LEADER_CHANGED" in got and got
            got = wait_for(failed, 20, "%s to declare %s failed and follow a new leader"
                           % (c.names[i], cut))
            mine = types_after(events(c, i), marks[i], member=cut)
            assert mine[0] == "MEMBER_SUSPECT" and "MEMBER_FAILED" in mine, mine
            assert "LEADER_CHANGED" in got, got
            # A survivor may be suspected for a moment on a loaded machine (and refute), but
            # never declared failed.
            assert all(e.get("member") == cut for e in events(c, i)
                       if e["id"] > marks[i] and e["type"] == "MEMBER_FAILED")
        new_leader = c.leader(exclude=(li,))
        assert new_leader != li
        wait_for(lambda: "QUORUM_LOST" in pushed_types(), 20, "QUORUM_LOST pushed on the cut-off node")
        for other in rest:
            assert "MEMBER_FAILED" in types_after(events(c, li), marks[li], member=c.names[other]) or \
                wait_for(lambda other=other: "MEMBER_FAILED" in types_after(
                    events(c, li), marks[li], member=c.names[other]), 10, "the cut-off side to fail the others")
        # 503 at once ("no leader" while its peer links still look up: a pulled cable sends no
        # RST), then "no quorum" once the links are declared down (2 s without an answer).
        # The HTTP side renders the snapshot the loop publishes every cron tick (100 ms).
        wait_for(lambda: http_get(c, li, "/health/ready") == (503, "no quorum: 1 of 3 voters "
                                                                   "reachable, 2 needed\n"),
                 10, "ready 503 'no quorum'")
        doc = json.loads(http_get(c, li, "/health")[1])
        assert doc["clusterSafe"] is False and doc["hasQuorum"] is False, doc
        assert stale_get() == "QUORUM majority required=2 actual=1"
        # The majority keeps its quorum and serves.
        assert http_get(c, new_leader, "/health/ready")[0] == 200
        assert "QUORUM_LOST" not in types_after(events(c, new_leader), marks[new_leader])
    finally:
        c.heal(li)
    for i in rest:
        wait_for(lambda i=i: types_after(events(c, i), marks[i], member=cut)[-1:] == ["MEMBER_ALIVE"],
                 20, "%s to see %s alive after the heal" % (c.names[i], cut))
    wait_for(lambda: "QUORUM_REGAINED" in pushed_types(), 20, "QUORUM_REGAINED pushed after the heal")
    t = pushed_types()
    assert t.index("QUORUM_LOST") < t.index("QUORUM_REGAINED"), t
    wait_for(lambda: http_get(c, li, "/health/ready")[0] == 200, 20, "the healed node ready again")
    assert stale_get() == b"v"
    sub.close()

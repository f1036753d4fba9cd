"""Cluster events (HALYARD EVENTS, halyctl events) on real 3-node clusters under real faults:
kill -9 of the leader (MEMBER_SUSPECT, LEADER_CHANGED, MEMBER_FAILED in order), SIGSTOP and
SIGCONT of a member (MEMBER_SUSPECT, MEMBER_ALIVE), a member cut off through the fault proxy
(QUORUM_LOST on it, QUORUM_REGAINED after the heal) and a removed member (MEMBER_REMOVED)."""

import json
import os
import signal
import subprocess
import threading

import pytest

from cluster import Cluster, info
from conftest import RawConn, wait_for
from fault_proxy import ProxiedCluster

pytestmark = pytest.mark.halyard_only


def events(port):
    with RawConn(port, timeout=2.0) as c:
        return [json.loads(e) for e in c.cmd("HALYARD", "EVENTS", "COUNT", "1000")]


def types_after(evs, first_id, **match):
    return [e["type"] for e in evs
            if e["id"] > first_id and all(e.get(k) == v for k, v in match.items())]


def last_id(port):
    evs = events(port)
    return evs[-1]["id"] if evs else 0


def test_kill9_of_the_leader_is_suspect_then_a_new_leader_then_failed(tmp_path_factory, clusters):
    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    leader = c.names[li]
    for i in range(3):
        wait_for(lambda i=i: "LEADER_CHANGED" in types_after(events(c.ports[i]), 0, leader=leader),
                 10, "%s to report %s's leadership" % (c.names[i], leader))
    # Start-up's suspicions of members not yet connected are over before anything is counted.
    for i in range(3):
        wait_for(lambda i=i: (lambda kv: kv.get("gossip_members_alive") == "2" and
                              kv.get("gossip_members_suspect") == "0")(info(c.ports[i], "cluster")),
                 10, "%s to hold every member alive" % c.names[i])
    marks = {i: last_id(c.ports[i]) for i in range(3) if i != li}
    c.kill(li)
    for i, mark in marks.items():
        def seen(i=i, mark=mark):
            got = types_after(events(c.ports[i]), mark)
            return "MEMBER_FAILED" in got and got
        got = wait_for(seen, 20, "%s to report %s failed" % (c.names[i], leader))
        mine = [t for t in got if t in ("MEMBER_SUSPECT", "LEADER_CHANGED", "MEMBER_FAILED")]
        assert mine[0] == "MEMBER_SUSPECT" and mine[-1] == "MEMBER_FAILED", got
        assert "LEADER_CHANGED" in mine, got
        evs = [e for e in events(c.ports[i]) if e["id"] > mark]
        # The survivor may be suspected a moment on a loaded machine (and refute: the known
        # limit in docs/operations.md), but only the killed leader is ever failed.
        assert all(e.get("member") == leader for e in evs if e["type"] == "MEMBER_FAILED")
        assert [e for e in evs if e["type"] == "LEADER_CHANGED"][0]["leader"] != leader
    # halyctl events prints the same events, --json one object a line.
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    any_i = next(iter(marks))
    r = subprocess.run([exe, "-p", str(c.ports[any_i]), "events", "--json"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert [e["id"] for e in lines] == sorted(e["id"] for e in lines)
    assert "MEMBER_FAILED" in [e["type"] for e in lines]
    r = subprocess.run([exe, "-p", str(c.ports[any_i]), "events"], capture_output=True, text=True,
                       timeout=30)
    assert "MEMBER_FAILED member=%s" % leader in r.stdout, r.stdout


def test_sigstop_is_suspect_and_sigcont_alive(tmp_path_factory, clusters):
    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    fi = (li + 1) % 3
    mark = last_id(c.ports[li])
    c.kill(fi, signal.SIGSTOP)
    try:
        wait_for(lambda: "MEMBER_SUSPECT" in types_after(events(c.ports[li]), mark,
                                                         member=c.names[fi]),
                 15, "the leader to suspect the stopped member")
    finally:
        c.kill(fi, signal.SIGCONT)
    wait_for(lambda: types_after(events(c.ports[li]), mark, member=c.names[fi])[-1:] ==
             ["MEMBER_ALIVE"], 15, "the member alive again")


def test_a_cut_off_member_loses_quorum_and_regains_it(tmp_path_factory, clusters):
    c = ProxiedCluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    fi = (li + 1) % 3
    wait_for(lambda: "LEADER_CHANGED" in types_after(events(c.ports[fi]), 0), 10,
             "the follower to know its leader")
    mark = last_id(c.ports[fi])
    c.net.partition([fi])
    try:
        wait_for(lambda: "QUORUM_LOST" in types_after(events(c.ports[fi]), mark), 20,
                 "the cut-off member to report its quorum lost")
    finally:
        c.net.heal()
    wait_for(lambda: types_after(events(c.ports[fi]), mark)[-1:] == ["QUORUM_REGAINED"] or
             "QUORUM_REGAINED" in types_after(events(c.ports[fi]), mark), 20,
             "the quorum regained after the heal")
    # The majority kept its quorum throughout.
    assert "QUORUM_LOST" not in types_after(events(c.ports[li]), mark)


def test_removed_member_is_reported(tmp_path_factory, clusters):
    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    victim = (li + 2) % 3
    c.kill(victim)
    mark = last_id(c.ports[li])
    with RawConn(c.ports[li]) as r:
        assert r.cmd("HALYARD", "REMOVE", c.names[victim]) == "OK"
    for i in range(3):
        if i != victim:
            wait_for(lambda i=i: "MEMBER_REMOVED" in types_after(
                events(c.ports[i]), mark if i == li else 0, member=c.names[victim]), 15,
                "%s to report the removal" % c.names[i])


def test_events_stream_over_http_sse(tmp_path_factory, clusters):
    """GET /events is a Server-Sent Events stream: from ?since=0 it replays what the node kept,
    then sends new events as they happen (a member killed); Last-Event-ID resumes after an id."""
    import http.client
    import threading

    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    victim = (li + 1) % 3
    conn = http.client.HTTPConnection("127.0.0.1", c.http_port(li), timeout=30)
    conn.request("GET", "/events?since=0")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    got = []

    def read():
        try:
            for raw in resp:
                got.append(raw.decode().rstrip("\n"))
        except (OSError, ValueError):
            pass
    t = threading.Thread(target=read, daemon=True)
    t.start()
    wait_for(lambda: "event: LEADER_CHANGED" in got, 10, "the kept events replayed")
    c.kill(victim)

    def suspected():
        # Another member may have been suspected while the cluster started (a node not yet
        # up is unreachable); the victim's own suspicion is the one awaited.
        return any(l.startswith("data: ") and json.loads(l[len("data: "):]).get("type") ==
                   "MEMBER_SUSPECT" and json.loads(l[len("data: "):]).get("member") ==
                   c.names[victim] for l in list(got))
    wait_for(suspected, 15, "the member's suspicion streamed")
    data = [json.loads(l[len("data: "):]) for l in got if l.startswith("data: ")]
    ids = [int(l[len("id: "):]) for l in got if l.startswith("id: ")]
    assert ids == [e["id"] for e in data] and ids == sorted(ids), got
    assert any(e["type"] == "MEMBER_SUSPECT" and e["member"] == c.names[victim] for e in data)
    conn.close()
    # Resuming after the first event with Last-Event-ID: the first one is not sent again.
    conn = http.client.HTTPConnection("127.0.0.1", c.http_port(li), timeout=30)
    conn.request("GET", "/events", headers={"Last-Event-ID": str(ids[0])})
    resp = conn.getresponse()
    first = b""
    while b"\n\n" not in first:
        first += resp.read1(4096)
    assert first.decode().startswith("id: %d\n" % (ids[0] + 1)), first
    conn.close()


def test_events_pushed_to_pubsub_subscribers(tmp_path_factory, clusters):
    """A client SUBSCRIBEd to __halyard__:events receives every cluster event of its node as the
    JSON of HALYARD EVENTS: a member killed (SUSPECT, then FAILED) and restarted (ALIVE), in
    that order; a pattern subscriber gets them too; clients may not publish there."""
    import redis

    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    victim = (li + 1) % 3
    watcher = (li + 2) % 3
    # Start-up's suspicions of members not yet connected are over before anything is counted.
    wait_for(lambda: (lambda kv: kv.get("gossip_members_alive") == "2" and
                      kv.get("gossip_members_suspect") == "0")(info(c.ports[watcher], "cluster")),
             10, "the watcher to hold every member alive")
    r = redis.Redis(port=c.ports[watcher], socket_timeout=5)
    p = r.pubsub()
    p.subscribe("__halyard__:events")
    pp = r.pubsub()
    pp.psubscribe("__halyard__:*")
    for sub in (p, pp):
        wait_for(lambda sub=sub: sub.get_message(timeout=0.1) is not None, 5, "the subscribe notice")
    got, pgot = [], []

    def drain():
        for sub, into in ((p, got), (pp, pgot)):
            while True:
                m = sub.get_message(timeout=0.05)
                if m is None:
                    break
                if m["type"] in ("message", "pmessage"):
                    assert m["channel"] == b"__halyard__:events", m
                    into.append(json.loads(m["data"]))

    def member_types():
        drain()
        return [e["type"] for e in got if e.get("member") == c.names[victim]]

    c.kill(victim)
    wait_for(lambda: "MEMBER_FAILED" in member_types(), 20, "MEMBER_FAILED pushed")
    c.start(victim)
    wait_for(lambda: member_types()[-1:] == ["MEMBER_ALIVE"], 20, "MEMBER_ALIVE pushed")
    seen = member_types()
    assert seen[0] == "MEMBER_SUSPECT" and seen.index("MEMBER_FAILED") < seen.index("MEMBER_ALIVE"), seen
    # The pushed events are exactly the node's events, in its order, with nothing missed.
    ids = [e["id"] for e in got]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids
    kept = {e["id"]: e for e in events(c.ports[watcher])}
    assert all(kept[e["id"]] == e for e in got)
    wait_for(lambda: (drain(), [e["id"] for e in pgot][:len(ids)] == ids)[1], 5,
             "the pattern subscriber to have the same events")
    with pytest.raises(redis.ResponseError, match="cluster events"):
        r.publish("__halyard__:events", '{"type":"MEMBER_FAILED","member":"n1"}')
    p.close()
    pp.close()
    r.close()


class PushReader:
    """A RESP3 connection (HELLO 3) subscribed with HALYARD EVENTS SUBSCRIBE: reads frames in a
    thread and keeps each one's first byte, so the test sees that events come as `>` pushes."""

    def __init__(self, port):
        self.conn = RawConn(port, timeout=None)
        assert self.conn.cmd("HELLO", "3")[b"proto"] == 3
        self.conn.send(RawConn.encode("HALYARD", "EVENTS", "SUBSCRIBE"))
        self.frames = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                while not self.conn.buf:
                    self.conn._fill()
                kind = self.conn.buf[:1]
                self.frames.append((kind, self.conn.read()))
        except (OSError, ConnectionError):
            pass

    def events(self):
        return [json.loads(f[2]) for k, f in list(self.frames) if f[0] == b"message"]


def test_events_subscribe_pushes_every_fault_in_order(tmp_path_factory, clusters):
    """HALYARD EVENTS SUBSCRIBE on a member that watches both the others fail: its RESP3
    subscriber (`>` pushes), a RESP2 redis-py subscriber (the subscriber context) and redis-cli -3
    all receive, in the node's order and exactly as HALYARD EVENTS keeps them, the leader's
    fault (MEMBER_SUSPECT then MEMBER_FAILED, a LEADER_CHANGED to another), the last other
    member's (MEMBER_SUSPECT, QUORUM_LOST) and the recovery (MEMBER_ALIVE, QUORUM_REGAINED), once for
    kill -9 and restarts, once for SIGSTOP and SIGCONT; SINCE replays the kept events first;
    HALYARD EVENTS UNSUBSCRIBE ends the subscription."""
    import redis

    c = Cluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    w = (li + 1) % 3
    port = c.ports[w]
    # Start-up's suspicions of members not yet connected are over before anything is counted.
    wait_for(lambda: (lambda kv: kv.get("gossip_members_alive") == "2" and
                      kv.get("gossip_members_suspect") == "0")(info(port, "cluster")),
             10, "the watcher to hold every member alive")
    first = last_id(port)
    resp3 = PushReader(port)
    r2 = redis.Redis(port=port, socket_timeout=60).connection_pool.get_connection("_")
    r2.send_command("HALYARD", "EVENTS", "SUBSCRIBE", "SINCE", "0")
    assert r2.read_response() == [b"subscribe", b"__halyard__:events", 1]
    cli = subprocess.Popen(["stdbuf", "-o0", "redis-cli", "-p", str(port), "-3", "--show-pushes",
                            "yes", "HALYARD", "EVENTS", "SUBSCRIBE"], stdout=subprocess.PIPE,
                           text=True)
    cli_lines = []

    def read_cli():
        for line in cli.stdout:
            cli_lines.append(line.rstrip("\n"))
    threading.Thread(target=read_cli, daemon=True).start()
    try:
        # redis-cli prints each push as its lines: the notice, then each event's three.
        wait_for(lambda: cli_lines[:3] == ["subscribe", "__halyard__:events", "1"], 10,
                 "redis-cli's subscribe notice")
        wait_for(lambda: resp3.frames, 5, "the RESP3 subscribe notice")
        assert resp3.frames[0] == (b">", [b"subscribe", b"__halyard__:events", 1])
        # RESP2: anything but the subscriber context's commands is refused meanwhile.
        with RawConn(port) as raw:
            raw.cmd("HALYARD", "EVENTS", "SUBSCRIBE")
            assert "only (P|S)SUBSCRIBE" in str(raw.cmd("GET", "k"))
            assert raw.cmd("HALYARD", "EVENTS", "UNSUBSCRIBE") == [
                b"unsubscribe", b"__halyard__:events", 0]
            assert raw.cmd("GET", "k") is None
        for mode in ("kill", "stop"):
            mark = last_id(port)
            others = [i for i in range(3) if i != w]
            lead = c.leader()
            victims = [lead, next(i for i in others if i != lead)] if lead != w else others
            sig = signal.SIGKILL if mode == "kill" else signal.SIGSTOP
            try:
                c.kill(victims[0], sig)
                wait_for(lambda: "MEMBER_FAILED" in types_after(
                    resp3.events(), mark, member=c.names[victims[0]]), 20,
                    "%s of the leader: MEMBER_FAILED pushed" % mode)
                c.kill(victims[1], sig)

                def v1_down():
                    mine = [t for t in types_after(resp3.events(), mark, member=c.names[victims[1]])
                            if t.startswith("MEMBER_")]
                    return mine[-1:] in (["MEMBER_SUSPECT"], ["MEMBER_FAILED"])
                wait_for(lambda: "QUORUM_LOST" in types_after(resp3.events(), mark) and v1_down(),
                         20, "%s of the other: MEMBER_SUSPECT and QUORUM_LOST pushed" % mode)
            finally:
                for v in victims:
                    if mode == "kill":
                        c.start(v)
                    else:
                        c.kill(v, signal.SIGCONT)
            def recovered():
                got = types_after(resp3.events(), mark)
                lost = got.index("QUORUM_LOST")
                return "QUORUM_REGAINED" in got[lost:] and all(
                    [t for t in types_after(resp3.events(), mark, member=c.names[v])
                     if t.startswith("MEMBER_")][-1:] == ["MEMBER_ALIVE"] for v in victims)
            try:
                wait_for(recovered, 30, "%s: the recovery pushed" % mode)
            except AssertionError as e:
                raise AssertionError("%s; pushed %s" % (e, [(v["type"], v.get("member")) for v
                                                           in resp3.events() if v["id"] > mark]))
            evs = [e for e in resp3.events() if e["id"] > mark]
            order = [(e["type"], e.get("member")) for e in evs]
            v0, v1 = c.names[victims[0]], c.names[victims[1]]

            def at(t, member=None, after=-1):
                for k in range(after + 1, len(order)):
                    if order[k][0] == t and (member is None or order[k][1] == member):
                        return k
                raise AssertionError("%s: %s %s not after %d in %s" % (mode, t, member, after, order))
            # Each detector keeps its own order; between them, what the test's steps impose:
            # an election may beat gossip to a stopped leader (no link breaks to tell it), and
            # QUORUM_LOST (two election timeouts) gossip's suspicion of the second member, which
            # may even come first (a survivor suspected a moment while the leader stops: the
            # known limit in docs/operations.md "Failure detection").
            f0 = at("MEMBER_FAILED", v0, after=at("MEMBER_SUSPECT", v0))
            lost = at("QUORUM_LOST", after=f0)
            at("MEMBER_SUSPECT", v1)
            if victims[0] == lead:
                assert any(t == "LEADER_CHANGED" and evs[k]["leader"] != v0
                           for k, (t, _) in enumerate(order[:lost])), (mode, order)
            at("QUORUM_REGAINED", after=lost)
            at("MEMBER_ALIVE", after=lost)
            # Only the faulted members were ever declared failed.
            assert {e["member"] for e in evs if e["type"] == "MEMBER_FAILED"} <= {v0, v1}, evs
            wait_for(lambda: (lambda kv: kv.get("gossip_members_alive") == "2" and
                              kv.get("gossip_members_suspect") == "0")(info(port, "cluster")),
                     30, "every member alive again")
        # The three subscribers got the node's events exactly, in its order, none missed.
        pushed = resp3.events()
        assert all(k == b">" for k, _ in resp3.frames), resp3.frames
        ids = [e["id"] for e in pushed]
        assert ids == list(range(ids[0], ids[0] + len(ids))) and ids[0] > first, ids
        kept = {e["id"]: e for e in events(port)}
        assert all(kept[e["id"]] == e for e in pushed)
        got2 = []
        while len(got2) < ids[-1]:
            m = r2.read_response()
            assert m[:2] == [b"message", b"__halyard__:events"], m
            got2.append(json.loads(m[2]))
        assert [e["id"] for e in got2] == list(range(1, ids[-1] + 1))  # SINCE 0: all, then new
        assert got2[ids[0] - 1:] == pushed
        # redis-cli subscribed last: it has the events from its subscription on.
        wait_for(lambda: cli_lines[-1:] == [json.dumps(pushed[-1], separators=(",", ":"))], 10,
                 "redis-cli's events")
        cli_events = [json.loads(l) for l in cli_lines[5::3]]
        assert cli_lines[3::3] == ["message"] * len(cli_events), cli_lines
        assert cli_events == [e for e in pushed if e["id"] >= cli_events[0]["id"]]
    finally:
        cli.kill()
        cli.wait()
        resp3.conn.close()
        r2.disconnect()


def test_events_subscribe_pushes_a_partition_and_its_heal(tmp_path_factory, clusters):
    """A member cut off through the fault proxy, subscribed with HALYARD EVENTS SUBSCRIBE over
    RESP3: it is pushed its suspicion of both others (MEMBER_SUSPECT), then QUORUM_LOST, and
    after the heal MEMBER_ALIVE for both and QUORUM_REGAINED, in that order; the pushed events
    are exactly those HALYARD EVENTS keeps."""
    c = ProxiedCluster(tmp_path_factory, 3)
    clusters.append(c)
    c.start_all()
    li = c.leader()
    fi = (li + 1) % 3
    port = c.ports[fi]
    wait_for(lambda: (lambda kv: kv.get("gossip_members_alive") == "2" and
                      kv.get("gossip_members_suspect") == "0")(info(port, "cluster")),
             10, "the member to hold every member alive")
    wait_for(lambda: "LEADER_CHANGED" in types_after(events(port), 0), 10,
             "the member to know its leader")
    sub = PushReader(port)
    wait_for(lambda: sub.frames, 5, "the RESP3 subscribe notice")
    others = {c.names[i] for i in range(3) if i != fi}

    def state_of(member):
        mine = [e["type"] for e in sub.events() if e.get("member") == member]
        return mine[-1] if mine else None
    c.net.partition([fi])
    try:
        wait_for(lambda: "QUORUM_LOST" in [e["type"] for e in sub.events()] and
                 all(state_of(m) in ("MEMBER_SUSPECT", "MEMBER_FAILED") for m in others), 30,
                 "QUORUM_LOST and both others suspected, pushed")
    finally:
        c.net.heal()
    wait_for(lambda: "QUORUM_REGAINED" in [e["type"] for e in sub.events()] and
             all(state_of(m) == "MEMBER_ALIVE" for m in others), 30,
             "QUORUM_REGAINED and both others alive again, pushed")
    order = [(e["type"], e.get("member")) for e in sub.events()]
    lost = order.index(("QUORUM_LOST", None))
    regained = order.index(("QUORUM_REGAINED", None))
    assert lost < regained, order
    for m in others:
        assert ("MEMBER_SUSPECT", m) in order[:regained], order
        assert ("MEMBER_ALIVE", m) in order[lost + 1:], order
    assert all(k == b">" for k, _ in sub.frames), sub.frames
    kept = {e["id"]: e for e in events(port)}
    pushed = sub.events()
    assert [e["id"] for e in pushed] == list(range(pushed[0]["id"], pushed[-1]["id"] + 1))
    assert all(kept[e["id"]] == e for e in pushed)
    sub.conn.close()

"""Webhook alerts (alert-webhooks): a small HTTP receiver in the test gets the JSON POSTs a
3-node cluster sends when a member fails (kill -9) and when a cut-off member loses its quorum;
a receiver that answers 500 at first gets the alert on a retry; a receiver that is down never
holds up the cluster; a bad URL list stops the start; a follower stopped while the leader writes
is posted as FOLLOWER_LAGGING and caught up again after SIGCONT; a node whose disk fills up (a
small tmpfs, as root) records DISK_FULL and posts it."""

import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from cluster import Cluster
from conftest import RawConn, RespError, free_port, wait_for
from fault_proxy import ProxiedCluster

pytestmark = pytest.mark.halyard_only


def metrics(port, family):
    """The samples of one /metrics family, as {labels text: value}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{") or line.startswith(family + " "):
            name_labels, value = line.rsplit(" ", 1)
            out[name_labels[len(family):]] = float(value)
    return out


class Receiver:
    """Records every POST body; answers 500 to the first `fail_first` of them. Each attempt's
    arrival and answer times are kept (`times`); with `hold_first`, the first attempt is
    answered only once the test sets `release` (a receiver that hangs)."""

    def __init__(self, fail_first=0, hold_first=False):
        self.bodies = []
        self.attempts = 0
        self.times = []
        self.fail_first = fail_first
        self.holding = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                arrived = time.monotonic()
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.attempts += 1
                if outer.attempts == 1:
                    outer.holding.set()
                    outer.release.wait(30)
                if outer.attempts <= outer.fail_first:
                    self.send_response(500)
                else:
                    outer.bodies.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.times.append((arrived, time.monotonic()))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def types(self, **match):
        return [b["type"] for b in self.bodies if all(b.get(k) == v for k, v in match.items())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_member_failed_is_posted_by_every_survivor(tmp_path_factory, clusters, receiver):
    c = Cluster(tmp_path_factory, 3, {"alert-webhooks": receiver.url()})
    clusters.append(c)
    c.start_all()
    li = c.leader()
    victim = (li + 1) % 3
    c.kill(victim)
    survivors = {c.names[i] for i in range(3) if i != victim}
    wait_for(lambda: {b["node"] for b in receiver.bodies if b["type"] == "MEMBER_FAILED"} ==
             survivors, 20, "MEMBER_FAILED from both survivors")
    for b in receiver.bodies:
        if b["type"] == "MEMBER_FAILED":
            assert b["member"] == c.names[victim] and b["cluster"] == "halyard", b
    # Events that do not alert (LEADER_CHANGED, MEMBER_SUSPECT) were not posted.
    assert set(receiver.types()) <= {"MEMBER_FAILED", "QUORUM_LOST", "QUORUM_REGAINED",
                                     "FOLLOWER_LAGGING", "DISK_FULL"}


def test_quorum_lost_and_regained_on_a_cut_off_member(tmp_path_factory, clusters, receiver):
    c = ProxiedCluster(tmp_path_factory, 3, {"alert-webhooks": receiver.url()})
    clusters.append(c)
    c.start_all()
    li = c.leader()
    fi = (li + 1) % 3
    c.net.partition([fi])
    try:
        wait_for(lambda: "QUORUM_LOST" in receiver.types(node=c.names[fi]), 20,
                 "QUORUM_LOST from the cut-off member")
    finally:
        c.net.heal()
    wait_for(lambda: "QUORUM_REGAINED" in receiver.types(node=c.names[fi]), 20,
             "QUORUM_REGAINED after the heal")


def test_a_failing_receiver_gets_the_alert_on_a_retry(tmp_path_factory, clusters):
    r = Receiver(fail_first=2)
    try:
        c = Cluster(tmp_path_factory, 3, {"alert-webhooks": r.url()})
        clusters.append(c)
        c.start_all()
        li = c.leader()
        c.kill((li + 2) % 3)
        wait_for(lambda: "MEMBER_FAILED" in r.types(), 25, "the alert after two 500s")
        assert r.attempts >= 3
    finally:
        r.close()


def test_retries_back_off_and_the_rate_limit_holds_while_the_node_serves(tmp_path_factory,
                                                                         clusters):
    """alert-rate-max 5 per alert-rate-window-ms 60000, a receiver that hangs on its first POST
    and answers 500 to its first 3: the node serves 300 writes and reads while the sender waits
    on it; the first alert (HALYARD ALERTS TEST) arrives on the 4th attempt, each retry at least
    the doubling backoff (250, 500, 1000 ms) after the answer before, though 40 more alerts are
    queued meanwhile (each wakes the sender's thread); of the 41, the receiver gets 5 in the
    window, and /metrics counts 5 sent, 36 rate-limited, 3 retries."""
    r = Receiver(fail_first=3, hold_first=True)
    try:
        c = Cluster(tmp_path_factory, 1, {"alert-webhooks": r.url(), "alert-rate-max": 5,
                                          "alert-rate-window-ms": 60000})
        clusters.append(c)
        c.start_all()
        c.leader()
        port, http_port = c.ports[0], c.http_port(0)
        with RawConn(port, timeout=10.0) as conn:
            first = conn.cmd("HALYARD", "ALERTS", "TEST")
            assert isinstance(first, int), first
            assert r.holding.wait(10), "the first attempt never came"
            for k in range(300):
                assert conn.cmd("SET", "a%d" % k, "v%d" % k) == "OK"
                assert conn.cmd("GET", "a%d" % k) == b"v%d" % k
            assert r.attempts == 1, "the sender did not wait on the hanging receiver"
            r.release.set()
            flood = [conn.cmd("HALYARD", "ALERTS", "TEST") for _ in range(40)]
            assert flood == sorted(set(flood)) and flood[0] > first, flood
            assert conn.cmd("PING") == "PONG"

        def settled():
            m = metrics(http_port, "halyard_alerts_total")
            return m['{outcome="sent"}'] + m['{outcome="rate_limited"}'] == 41 and m
        m = wait_for(settled, 30, "every alert sent or dropped")
        assert m == {'{outcome="sent"}': 5, '{outcome="failed"}': 0,
                     '{outcome="rate_limited"}': 36, '{outcome="queue_full"}': 0}, m
        assert metrics(http_port, "halyard_alert_retries_total") == {"": 3}
        assert [b["id"] for b in r.bodies] == [first] + flood[:4], r.bodies
        assert all(b["type"] == "ALERT_TEST" and b["node"] == c.names[0] for b in r.bodies)
        assert r.attempts == 8
        for k, backoff in enumerate((0.25, 0.5, 1.0)):
            gap = r.times[k + 1][0] - r.times[k][1]
            assert gap >= backoff * 0.9, (k, gap, r.times)
        assert "dropping until the window ends" in c.nodes[0].log_tail(1 << 20)
    finally:
        r.release.set()
        r.close()


def test_a_receiver_that_is_down_holds_nothing_up(tmp_path_factory, clusters):
    dead = "http://127.0.0.1:%d/hook" % free_port()  # nothing listens there
    c = Cluster(tmp_path_factory, 3, {"alert-webhooks": dead})
    clusters.append(c)
    c.start_all()
    li = c.leader()
    c.kill((li + 1) % 3)
    cl = c.nodes[li].client()
    for i in range(200):
        assert cl.set("alerts:%d" % i, "x")
    wait_for(lambda: "did not take an alert" in c.nodes[li].log_tail(1 << 20), 30,
             "the failed deliveries logged")


def test_bad_webhook_list_stops_the_start(servers):
    s = servers.start({"alert-webhooks": "ftp://example.org/x"}, ready=False)
    assert s.wait_exit(20) not in (None, 0)
    assert "alert-webhooks" in s.log_tail(), s.log_tail()
    s._stopped = True


def test_a_stopped_follower_is_posted_as_lagging_and_caught_up_after(tmp_path_factory, clusters,
                                                                      receiver):
    """alert-lag-entries 100: a follower SIGSTOPped while the leader commits 300 writes is more
    than 100 entries behind (FOLLOWER_LAGGING, posted by the leader); after SIGCONT it catches up
    (FOLLOWER_CAUGHT_UP in the leader's events, not an alert)."""
    c = Cluster(tmp_path_factory, 3, {"alert-webhooks": receiver.url(), "alert-lag-entries": 100})
    clusters.append(c)
    c.start_all()
    li = c.leader()
    fi = (li + 1) % 3
    os.kill(c.nodes[fi].pid, signal.SIGSTOP)
    try:
        with RawConn(c.ports[li], timeout=10.0) as conn:
            for k in range(300):
                assert conn.cmd("SET", "lag%d" % k, "v") in ("OK", b"OK")
        wait_for(lambda: receiver.types(member=c.names[fi]).count("FOLLOWER_LAGGING") >= 1, 20,
                 "FOLLOWER_LAGGING for the stopped follower")
        body = [b for b in receiver.bodies if b["type"] == "FOLLOWER_LAGGING"][0]
        assert body["node"] == c.names[li] and body["lagEntries"] > 100, body
    finally:
        os.kill(c.nodes[fi].pid, signal.SIGCONT)

    def caught_up():
        with RawConn(c.ports[li], timeout=5.0) as conn:
            evs = [json.loads(e) for e in conn.cmd("HALYARD", "EVENTS", "COUNT", "200")]
        return any(e["type"] == "FOLLOWER_CAUGHT_UP" and e["member"] == c.names[fi] for e in evs)

    wait_for(caught_up, 30, "FOLLOWER_CAUGHT_UP after SIGCONT")
    assert "FOLLOWER_CAUGHT_UP" not in receiver.types()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs")
def test_disk_full_is_an_event_and_an_alert(tmp_path_factory, receiver):
    """A single node on a 16 MiB tmpfs takes 64 kB values until its WAL's disk refuses a write:
    the writes are refused (READONLY disk full), HALYARD EVENTS has DISK_FULL, and the webhook
    receiver gets it with the node's name."""
    c = Cluster(tmp_path_factory, 1, {"alert-webhooks": receiver.url()})
    data = os.path.join(c.dir, c.names[0])
    os.makedirs(data)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", data], check=True)
    try:
        c.start_all()
        c.leader()
        value = "x" * 65536
        refused = None
        with RawConn(c.ports[0], timeout=10.0) as conn:
            for k in range(2000):  # 128 MB at most: far past 16 MiB
                got = conn.cmd("SET", "k%d" % k, value)
                if isinstance(got, RespError):
                    refused = got
                    break
        assert refused is not None, "the disk never filled"
        with RawConn(c.ports[0], timeout=10.0) as conn:
            wait_for(lambda: any(json.loads(e)["type"] == "DISK_FULL"
                                 for e in conn.cmd("HALYARD", "EVENTS", "COUNT", "100")),
                     20, "a DISK_FULL event")
            got = conn.cmd("SET", "after", "1")
            assert isinstance(got, RespError) and "disk full" in got, got
        wait_for(lambda: "DISK_FULL" in receiver.types(), 20, "the DISK_FULL alert")
        body = [b for b in receiver.bodies if b["type"] == "DISK_FULL"][0]
        assert body["node"] == c.names[0] and body["cluster"] == "halyard", body
    finally:
        errors = c.stop_all()
        subprocess.run(["umount", "-l", data], check=False)
    assert not errors, errors  # a node with a full disk still stops cleanly

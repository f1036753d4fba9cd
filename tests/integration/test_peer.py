"""Peer transport (src/io/peer.c) with real processes on 127.0.0.1.

Each node is build/tools/peer_echo (next to $HALYARD_BIN): it joins a mesh, sends RAFT and
FORWARD frames to every peer, answers FORWARDs, and prints events and queue statistics on
stdout (see the tool's header). Every wait polls a condition with a deadline.
"""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

HALYARD_BIN = os.environ.get("HALYARD_BIN", os.path.abspath("build/halyard"))
PEER_ECHO = os.path.join(os.path.dirname(HALYARD_BIN), "tools", "peer_echo")

pytestmark = pytest.mark.skipif(
    os.environ.get("HY_TARGET", "halyard") != "halyard" or not os.path.exists(PEER_ECHO),
    reason="needs build/tools/peer_echo",
)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, deadline_s, what, interval=0.02):
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (deadline_s, what))
        time.sleep(interval)


class Node:
    """One peer_echo process; its stdout and stderr lines are collected by threads."""

    def __init__(self, node_id, port, peers, cluster="test", secret="s3cret", extra=()):
        self.id = node_id
        self.port = port
        self.args = [PEER_ECHO, "--id", node_id, "--cluster", cluster, "--secret", secret,
                     "--listen", "127.0.0.1:%d" % port, "--stats-interval-ms", "100"]
        for pid, pport in peers:
            self.args += ["--peer", "%s@127.0.0.1:%d" % (pid, pport)]
        self.args += list(extra)
        self.out = []
        self.err = []
        self.lock = threading.Lock()
        self.proc = None

    def start(self):
        self.out, self.err = [], []
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()
        wait_for(lambda: self.has("LISTENING"), 10, "%s to listen" % self.id)
        return self

    def _pump(self, stream, sink):
        for line in stream:
            with self.lock:
                sink.append(line.rstrip("\n"))

    def lines(self, err=False):
        with self.lock:
            return list(self.err if err else self.out)

    def has(self, needle, err=False):
        return any(needle in line for line in self.lines(err))

    def count(self, needle):
        return sum(1 for line in self.lines() if line.startswith(needle))

    def stats(self, peer):
        """The latest STATS line for `peer`, as a dict of ints (None before the first)."""
        for line in reversed(self.lines()):
            if line.startswith("STATS peer=%s " % peer):
                fields = dict(kv.split("=", 1) for kv in line.split()[1:])
                return {k: int(v) for k, v in fields.items() if k != "peer"}
        return None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit on SIGTERM" % self.id)
        assert rc == 0, "%s exited with %d: %s" % (self.id, rc, "\n".join(self.lines(True)[-5:]))

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def nodes():
    started = []

    def make(*args, **kwargs):
        n = Node(*args, **kwargs)
        started.append(n)
        return n

    yield make
    for n in started:
        n.stop()
    for n in started:
        assert not n.has("BADDATA"), "%s received an altered entry" % n.id


def mesh(make, ids, **kwargs):
    ports = {i: free_port() for i in ids}
    return [make(i, ports[i], [(j, ports[j]) for j in ids if j != i], **kwargs).start() for i in ids]


def test_mesh_forms_and_exchanges_raft_and_forward(nodes):
    """Three nodes connect to each other, and RAFT, FORWARD and FORWARD_REPLY flow both ways."""
    ns = mesh(nodes, ["n1", "n2", "n3"])
    for n in ns:
        for other in ns:
            if other is n:
                continue
            wait_for(lambda: n.has("UP %s" % other.id), 10, "%s up to %s" % (n.id, other.id))
            wait_for(lambda: n.has("RAFT from=%s type=append" % other.id), 10, "raft at " + n.id)
            wait_for(lambda: n.has("FORWARD from=%s req=" % other.id), 10, "forward at " + n.id)
            wait_for(lambda: n.has("REPLY from=%s req=" % other.id), 10, "reply at " + n.id)
    reply = next(line for line in ns[0].lines() if line.startswith("REPLY from=n2"))
    assert "data=echo:hello-from-n1-" in reply


def refused_pair(nodes, a_kwargs, b_kwargs, a_id="n1", b_id="n2"):
    pa, pb = free_port(), free_port()
    a = nodes(a_id, pa, [(b_id, pb)], **a_kwargs).start()
    b = nodes(b_id, pb, [(a_id, pa)], **b_kwargs).start()
    return a, b


def assert_refused_both_sides(a, b, needle, deadline=10):
    """Both logs carry the refusal reason (one side refused, the other was told), and no
    connection came up."""
    wait_for(lambda: a.has(needle, err=True), deadline, "refusal logged by %s" % a.id)
    wait_for(lambda: b.has(needle, err=True), deadline, "refusal logged by %s" % b.id)
    wait_for(lambda: a.has("refused by the other side", err=True) and
             b.has("refused by the other side", err=True), deadline, "REJECT received")
    assert not a.has("UP ") and not b.has("UP ")


def test_wrong_cluster_name_is_refused(nodes):
    """A node of another cluster is refused, and both nodes log which clusters differ."""
    a, b = refused_pair(nodes, {"cluster": "blue"}, {"cluster": "green"})
    assert_refused_both_sides(a, b, "belongs to cluster")
    assert a.has("this is cluster 'blue'", err=True) or a.has("cluster 'green'", err=True)


def test_wrong_secret_is_refused(nodes):
    """A node with another secret fails the HMAC proof; both nodes log it."""
    secrets = ["sekrit-alpha-1", "sekrit-bravo-2"]
    a, b = refused_pair(nodes, {"secret": secrets[0]}, {"secret": secrets[1]})
    assert_refused_both_sides(a, b, "failed to prove the cluster secret")
    # Neither log contains either secret.
    for n in (a, b):
        assert not any(sec in line for line in n.lines(err=True) for sec in secrets)


def test_unknown_node_id_is_refused(nodes):
    """A node whose id is not configured on the acceptor is refused, logged on both sides."""
    pa, pb = free_port(), free_port()
    a = nodes("n1", pa, [("n2", pb)], extra=["--send-interval-ms", "0"]).start()
    intruder = nodes("n9", pb, [("n1", pa)]).start()
    wait_for(lambda: a.has("'n9' is not a configured peer", err=True), 10, "n1 refusing n9")
    wait_for(lambda: intruder.has("refused by the other side: unknown-node", err=True), 10,
             "n9 told why")
    # n1 dials n2's port and finds n9 there: it refuses that too, and n9 hears why.
    wait_for(lambda: a.has("dialled node 'n2' but node 'n9' answered", err=True), 10,
             "n1 refusing the wrong node")
    assert not a.has("UP ") and not intruder.has("UP ")


def test_killed_peer_reconnects_after_restart(nodes):
    """SIGKILL a peer: the others see it down; restarted, it is back up within a deadline."""
    n1, n2, n3 = mesh(nodes, ["n1", "n2", "n3"])
    wait_for(lambda: n1.has("UP n2") and n3.has("UP n2"), 10, "mesh up")
    n2.kill()
    wait_for(lambda: n1.has("DOWN n2") and n3.has("DOWN n2"), 10, "n2 seen down")
    wait_for(lambda: (n1.stats("n2") or {}).get("dropped_down", 0) > 0, 10, "drops while down")
    n2.start()
    # Redial backoff is capped at 2 s (with jitter; the cap itself is proved with simulated
    # time by test_peer.c's test_backoff_bounds), so a redial is due within about 2 s: the
    # deadlines leave a loaded machine room, and no elapsed time is asserted.
    wait_for(lambda: n1.stats("n2") and n1.stats("n2")["handshakes"] >= 2 and
             n3.stats("n2") and n3.stats("n2")["handshakes"] >= 2, 15, "reconnection")
    wait_for(lambda: n2.has("RAFT from=n1") and n2.has("RAFT from=n3"), 15, "traffic to n2")


def test_stopped_peer_keeps_sender_queue_bounded(nodes):
    """SIGSTOP a peer under a flood: the sender's queue stays under its bound (frames are
    dropped and counted), and after SIGCONT traffic resumes."""
    queue_max = 256 * 1024
    frame = 16 + 144 + 16 + 4096  # header + raft fixed part + entry head + payload
    pa, pb = free_port(), free_port()
    flood = ["--queue-max", str(queue_max), "--send-interval-ms", "5", "--burst", "40",
             "--payload-bytes", "4096", "--ping-timeout-ms", "30000", "--quiet"]
    sender = nodes("n1", pa, [("n2", pb)], extra=flood).start()
    receiver = nodes("n2", pb, [("n1", pa)], extra=["--send-interval-ms", "0", "--quiet"]).start()
    wait_for(lambda: sender.has("UP n2"), 10, "n1 up to n2")
    wait_for(lambda: (receiver.stats("n1") or {}).get("recv", 0) > 100, 10, "flood arriving")

    receiver.signal(signal.SIGSTOP)
    base = sender.stats("n2")["dropped_full"]
    wait_for(lambda: sender.stats("n2")["dropped_full"] > base + 1000, 20, "drops at the bound")
    s = sender.stats("n2")
    assert s["up"] == 1
    assert s["queued"] <= queue_max + frame
    assert s["peak"] <= queue_max + frame, s

    receiver.signal(signal.SIGCONT)
    # STATS lines written while stopped are still in the pipe: look only at newer ones.
    wait_for(lambda: receiver.has("STATS"), 5, "receiver printing")
    before = len(receiver.lines())
    recv0 = receiver.stats("n1")["recv"]
    wait_for(lambda: len(receiver.lines()) > before + 4 and
             receiver.stats("n1")["recv"] > recv0 + 5000, 20, "traffic resumed")
    assert sender.stats("n2")["peak"] <= queue_max + frame
    assert sender.stats("n2")["up"] == 1


def read_reject(sock, deadline_s=5):
    """Reads until EOF; returns the REJECT frame's (code, text) found at the start."""
    sock.settimeout(deadline_s)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data[:4] == b"HYPW" and data[5] == 5, data  # frame type 5 = REJECT
    code = int.from_bytes(data[16:18], "little")
    n = int.from_bytes(data[18:20], "little")
    return code, data[20:20 + n].decode()


@pytest.mark.parametrize("payload,needle", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
    # A HELLO header announcing a 64 MiB payload: refused before any of it is buffered.
    (b"HYPW\x01\x01\x00\x00" + (64 << 20).to_bytes(4, "little") + b"\x00" * 4, "over the limit"),
])
def test_stranger_is_told_why_and_disconnected(nodes, payload, needle):
    """Bytes that are not a valid handshake frame get a REJECT with the reason, then EOF."""
    port = free_port()
    n = nodes("n1", port, [], extra=["--send-interval-ms", "0"]).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        code, text = read_reject(s)
    assert code == 1 and needle in text, (code, text)
    wait_for(lambda: n.has(needle, err=True), 5, "the node logging the refusal")


def test_silent_peer_times_out_and_is_redialled(nodes):
    """A stopped peer stops answering PINGs: the connection is closed at the ping timeout,
    reported down, and redialled (and up again) once the peer runs again."""
    pa, pb = free_port(), free_port()
    # A ping timeout long against the ping interval, so that "not before the timeout" can be
    # checked with a wide margin: n2 last spoke at most one ping interval (100 ms) before it
    # was stopped, so the timeout cannot legitimately fire sooner than 2000 - 100 ms after
    # t0; the check asks for half that, which leaves a loaded 2-core machine 900 ms of lag.
    timeout_ms = 2000
    live = ["--ping-interval-ms", "100", "--ping-timeout-ms", str(timeout_ms)]
    a = nodes("n1", pa, [("n2", pb)], extra=live).start()
    b = nodes("n2", pb, [("n1", pa)], extra=live).start()
    wait_for(lambda: a.has("UP n2"), 10, "n1 up to n2")
    t0 = time.monotonic()  # before the signal: the time measured can only come out longer
    b.signal(signal.SIGSTOP)
    wait_for(lambda: a.has("DOWN n2 nothing received"), 20, "ping timeout")
    elapsed = time.monotonic() - t0
    assert elapsed >= timeout_ms / 2000.0, "n2 declared silent %.2f s after it stopped (timeout %d ms)" % (
        elapsed, timeout_ms)
    # n1 closes n2's connection to it too, a little later: an inbound connection allows for the
    # sparser PINGs of a link off the gossip ring (docs/peer-protocol.md).
    wait_for(lambda: sum("peer n2 (" in line and "nothing received" in line
                         for line in a.lines(True)) >= 2, 20, "n1 to close n2's connection to it")
    b.signal(signal.SIGCONT)
    wait_for(lambda: (a.stats("n2") or {}).get("handshakes", 0) >= 2 and a.stats("n2")["up"], 10,
             "n1 redialled n2")
    # n1 also closed n2's connection to it (silent too); n2 redials once running.
    wait_for(lambda: (b.stats("n1") or {}).get("handshakes", 0) >= 2 and b.stats("n1")["up"], 10,
             "n2 redialled n1")
    # n2 was the one paused: its own late ticks must not make it blame n1 for the silence.
    assert not b.has("DOWN n1 nothing received")

"""Network faults between cluster nodes, made with TCP proxies started by the test.

halyard's peer transport sends everything node i says to node j on i's own outbound
connection to j (peer.h: one outbound connection per peer, "for what we send"). So if node i
dials j through a proxy of its own, that proxy carries exactly the traffic i -> j (plus the
handshake replies on the same connection), and blocking it loses i's messages to j while j's
messages to i, which travel on j's connection through another proxy, still arrive. One proxy
per directed link gives partitions (block both directions between groups) and one-way loss
(block one direction).

block() returns only once the link is cut: a pump forwards a chunk only while holding the
proxy's gate and seeing the link pass, and block() takes the gate to close it, so no chunk
crosses a link after block() (or ProxyNet.partition()) has returned. Tests take that moment
as the start of the cut; no safety margin is guessed.

A blocked link either stalls (mode "stall": bytes are held, not read, as in a silent network
partition where TCP keeps retransmitting; new connections are accepted and held too; all of
it flows again on heal, so stale messages arrive late) or drops (mode "drop": every
connection is closed and new ones are closed on accept, as with a RST-ing firewall).

Each proxy is one accepting thread plus two pump threads per connection; close() stops them
all and joins them.
"""

import contextlib
import select
import socket
import threading

from cluster import Cluster

_POLL_S = 0.05


class LinkProxy:
    """Forwards connections accepted on 127.0.0.1:<port> to 127.0.0.1:<target_port>."""

    def __init__(self, target_port, name=""):
        self.target_port = target_port
        self.name = name
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(_POLL_S)
        self.port = self.lsock.getsockname()[1]
        self.passing = threading.Event()
        self.passing.set()
        self.mode = "pass"
        self.closed = False
        self.lock = threading.Lock()
        self.gate = threading.Lock()  # held by a pump while it forwards a chunk; see block()
        self.conns = []  # (downstream socket, upstream socket)
        self.threads = []
        self.bytes_forwarded = 0
        self.accepted = 0
        t = threading.Thread(target=self._accept_loop, name="proxy-accept-%s" % name, daemon=True)
        self.threads.append(t)
        t.start()

    def block(self, mode="stall"):
        """Cuts the link; when this returns no chunk is being forwarded and none will be until
        heal() (a pump that read a chunk holds it)."""
        assert mode in ("stall", "drop"), mode
        # A pump holds the gate only for one sendall to a live node; 10 s means it is stuck
        # (its destination stopped reading), and then the cut cannot be said to be in force.
        assert self.gate.acquire(timeout=10), "proxy %s: a pump is stuck forwarding" % self.name
        try:
            with self.lock:
                self.mode = mode
                self.passing.clear()
                if mode == "drop":
                    self._close_conns()
        finally:
            self.gate.release()

    def heal(self):
        with self.lock:
            self.mode = "pass"
            self.passing.set()

    def close(self):
        with self.lock:
            self.closed = True
            self.passing.set()  # wake stalled pumps so they see `closed`
            self._close_conns()
        for t in list(self.threads):
            t.join(5)
        alive = [t.name for t in self.threads if t.is_alive()]
        self.lsock.close()
        assert not alive, "proxy threads did not stop: %r" % alive

    def _close_conns(self):
        for a, b in self.conns:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.conns = []

    def _accept_loop(self):
        while not self.closed:
            try:
                down, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                if self.closed or self.mode == "drop":
                    down.close()
                    continue
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                down.close()  # the target is down: the dialling node sees its connection fail
                continue
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # Blocking sends (a timeout could cut a frame in two); receives poll with
                # select so that blocking and closing are noticed. close() shuts the sockets
                # down, which also ends a send blocked on a peer that stopped reading.
                s.settimeout(None)
            with self.lock:
                if self.closed or self.mode == "drop":
                    down.close()
                    up.close()
                    continue
                self.conns.append((down, up))
                self.accepted += 1
                # Prune finished threads so a long run does not accumulate them.
                self.threads = [t for t in self.threads if t.is_alive()]
                for src, dst, d in ((down, up, "fwd"), (up, down, "back")):
                    t = threading.Thread(target=self._pump, args=(src, dst, (down, up)),
                                         name="proxy-%s-%s" % (self.name, d), daemon=True)
                    self.threads.append(t)
                    t.start()

    def _wait_passing(self):
        """Blocks while the link is blocked; False when the proxy is closing."""
        while not self.passing.wait(_POLL_S):
            if self.closed:
                return False
        return not self.closed

    def _pump(self, src, dst, pair):
        try:
            while self._wait_passing():
                readable, _, _ = select.select([src], [], [], _POLL_S)
                if not readable:
                    continue
                data = src.recv(1 << 16)
                if not data:
                    break
                # Forwarded only under the gate while the link passes; blocked while this
                # chunk was in flight: held until healed.
                while True:
                    if not self._wait_passing():
                        return
                    with self.gate:
                        if self.passing.is_set():
                            dst.sendall(data)
                            self.bytes_forwarded += len(data)
                            break
        except (OSError, ValueError):
            pass  # closed under us (ValueError: select on a closed socket)
        finally:
            with self.lock:
                if pair in self.conns:
                    self.conns.remove(pair)
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


class ProxyNet:
    """One LinkProxy per ordered pair (i, j), i != j, forwarding to node j's real peer port."""

    def __init__(self, peer_ports):
        self.n = len(peer_ports)
        self.links = {}
        for i in range(self.n):
            for j in range(self.n):
                if i != j:
                    self.links[(i, j)] = LinkProxy(peer_ports[j], "%d>%d" % (i, j))

    def port(self, i, j):
        """The port node i dials to reach node j."""
        return self.links[(i, j)].port

    def block(self, i, j, mode="stall"):
        """Node i's messages to node j are lost."""
        self.links[(i, j)].block(mode)

    def partition(self, *groups, mode="stall"):
        """Cuts every link between different groups (both directions); links inside a group
        pass. Nodes not named in any group form one more group."""
        named = set(x for g in groups for x in g)
        groups = [set(g) for g in groups] + [set(range(self.n)) - named]
        side = {x: k for k, g in enumerate(groups) for x in g}
        for (i, j), link in self.links.items():
            if side[i] != side[j]:
                link.block(mode)
            else:
                link.heal()

    def heal(self):
        for link in self.links.values():
            link.heal()

    def close(self):
        errors = []
        for link in self.links.values():
            try:
                link.close()
            except AssertionError as e:
                errors.append(str(e))
        return errors


class ProxiedCluster(Cluster):
    """A Cluster whose nodes reach each other only through a ProxyNet: node i's bootstrap
    entry for node j (j != i) names the proxy i -> j; its own entry keeps its real peer port."""

    def __init__(self, tmp_path_factory, n=3, extra=None):
        super().__init__(tmp_path_factory, n, extra)
        self.net = ProxyNet([p + 10000 for p in self.ports])

    def bootstrap_for(self, i):
        parts = []
        for j, nm in enumerate(self.names):
            port = self.ports[j] + 10000 if j == i else self.net.port(i, j)
            parts.append("%s@127.0.0.1:%d" % (nm, port))
        return ",".join(parts)

    def moved_map(self):
        """A node derives a member's client port from the peer port it knows it by (minus
        10000), so a -MOVED from node i names "proxy(i -> j) - 10000" for node j: this maps
        such ports back to node j's client port."""
        return {self.net.port(i, j) - 10000: self.ports[j] for (i, j) in self.net.links}

    def stop_all(self):
        errors = super().stop_all()
        return errors + self.net.close()


@contextlib.contextmanager
def leader_and_follower(tmp_path_factory):
    """A started 3-node ProxiedCluster with its leader li and a follower fi: yields (c, li, fi).
    Every link is healed when the body ends, and the cluster is stopped (its nodes' errors
    fail the test). Tests of what a follower decides from its own replica cut the leader's link
    to it (c.net.block(li, fi)): the writes that commit meanwhile, with the other follower, are
    acknowledged while its replica lags for sure."""
    c = ProxiedCluster(tmp_path_factory, 3)
    c.start_all()
    try:
        li = c.leader(30)
        try:
            yield c, li, (li + 1) % 3
        finally:
            c.net.heal()
    finally:
        errors = c.stop_all()
    assert not errors, errors


def send_then_heal(c, conn, fport, *commands):
    """Sends `commands` (each an argument list) on `conn`, a connection to the cut-off follower
    on fport, and heals the network only once the follower has taken them: answered (from its
    replica: the fault such a test is for), forwarded them (INFO forwards_sent moved), or
    stopped knowing a leader (then they wait for one). Healing sooner could let the replica
    catch up first and hide an answer from it. The replies are left for the caller to read."""
    from cluster import info
    from conftest import wait_for

    before = int(info(fport, "stats")["forwards_sent"])
    conn.send(b"".join(conn.encode(*args) for args in commands))
    wait_for(lambda: select.select([conn.sock], [], [], 0)[0] or
             int(info(fport, "stats")["forwards_sent"]) > before or
             info(fport)["raft_leader"] == "", 30, "the follower to take the commands")
    c.net.heal()

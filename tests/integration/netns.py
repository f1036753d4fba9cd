"""A halyard cluster whose nodes live in network namespaces of their own (ip netns; needs root),
joined by one bridge in a namespace of its own, so that a test can cut a node off the network
for real: its bridge port is detached (packets to and from it vanish, no RST, no ICMP: what a
pulled cable or a dropped VLAN does) and attached again to heal.

Nothing is exposed on the host: the nodes listen on 10.213.0.N inside their namespaces, which
no host interface routes to. The test reaches each node from inside that node's namespace
(`in_ns`: a thread that enters the namespace before it opens its sockets), so a node cut off
from its peers still answers the test. Processes are started with `ip netns exec` (which
execs: the PID is the server's) and stopped by PID; the namespaces are deleted at the end."""

import ctypes
import itertools
import os
import shutil
import subprocess
import threading

import pytest

from cluster import SECRET, Cluster
from conftest import RawConn, RespError, Server, wait_for

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_seq = itertools.count()
PORT = 7379  # every node has the whole port space of its namespace
SUBNET = "10.213.0."


def _ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=10)


def netns_available():
    """True when this process may create network namespaces (root, iproute2)."""
    if os.geteuid() != 0:
        return False
    name = "hyprobe%d" % os.getpid()
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError):
        return False
    _ip("netns", "del", name)
    return True


def in_ns(ns, fn):
    """Runs fn() in a thread that entered namespace ns first: the sockets fn opens belong to
    ns (and stay there when used from other threads later). Returns fn's result or raises its
    exception."""
    out = {}

    def run():
        try:
            fd = os.open("/run/netns/" + ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, "setns %s: %s" % (ns, os.strerror(err)))
            finally:
                os.close(fd)
            out["v"] = fn()
        except BaseException as e:  # handed to the caller
            out["e"] = e

    t = threading.Thread(target=run, name="netns-" + ns)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]


class NetnsCluster(Cluster):
    def __init__(self, tmp_path_factory, n=3, extra=None):
        if not netns_available():
            pytest.skip("network namespaces need root and iproute2")
        super().__init__(tmp_path_factory, n, extra)
        tag = "hy%d%d" % (os.getpid() % 100000, next(_seq))
        self.sw = tag + "sw"
        self.ns = ["%sn%d" % (tag, i + 1) for i in range(n)]
        self.ports = [PORT] * n
        self.addrs = [SUBNET + str(i + 1) for i in range(n)]
        self.ports_in_bridge = ["%ss%d" % (tag, i + 1) for i in range(n)]
        self.bootstrap = ",".join("%s@%s:%d" % (nm, a, PORT + 10000)
                                  for nm, a in zip(self.names, self.addrs))
        self.joins = {}  # node index -> its --join list (instead of --bootstrap)
        self.etc = []    # /etc/netns/NS directories made (resolv.conf of a namespace)
        self._made = []
        try:
            self._build()
        except BaseException:
            self._teardown()
            raise

    def _build(self):
        _ip("netns", "add", self.sw)
        self._made.append(self.sw)
        _ip("-n", self.sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.sw, "link", "set", "br0", "up")
        for i, ns in enumerate(self.ns):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.sw, "link", "add", self.ports_in_bridge[i], "type", "veth", "peer", "name",
                "eth0", "netns", ns)
            _ip("-n", self.sw, "link", "set", self.ports_in_bridge[i], "master", "br0", "up")
            _ip("-n", ns, "addr", "add", self.addrs[i] + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def set_bootstrap(self, indexes):
        """Only these nodes form the cluster; the others join it later (set_join)."""
        self.bootstrap = ",".join("%s@%s:%d" % (self.names[i], self.addrs[i], PORT + 10000)
                                  for i in indexes)

    def set_join(self, i, join_list):
        self.joins[i] = join_list

    def set_resolver(self, i, nameserver="127.0.0.1"):
        """Node i's namespace gets a resolv.conf of its own (ip netns exec mounts
        /etc/netns/NS/resolv.conf over /etc/resolv.conf), naming a server in it."""
        d = "/etc/netns/" + self.ns[i]
        os.makedirs(d, exist_ok=True)
        self.etc.append(d)
        with open(d + "/resolv.conf", "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:2\n" % nameserver)

    def _teardown(self):
        for d in self.etc:
            shutil.rmtree(d, ignore_errors=True)
        if self.etc:
            try:
                os.rmdir("/etc/netns")  # only when no other namespace keeps files there
            except OSError:
                pass
        self.etc = []
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self._made = []

    def argv(self, i):
        a = super().argv(i)
        a[a.index("--bind") + 1] = self.addrs[i]
        if i in self.joins:
            k = a.index("--bootstrap")
            a[k:k + 2] = ["--join", self.joins[i]]
        return ["ip", "netns", "exec", self.ns[i]] + a

    def http_port(self, i):
        return PORT + 1000

    def conn(self, i, timeout=2.0):
        """A RawConn to node i, opened inside its namespace."""
        return in_ns(self.ns[i], lambda: RawConn(PORT, timeout=timeout, host=self.addrs[i]))

    def cmd(self, i, *args):
        with self.conn(i) as c:
            return c.cmd(*args)

    def _wait_ready(self, i):
        s = self.nodes[i]

        def ping():
            assert s.alive(), "node %s exited:\n%s" % (self.names[i], s.log_tail())
            r = self.cmd(i, "PING")
            return r == "PONG" or (isinstance(r, RespError) and r.startswith("NOAUTH"))

        wait_for(ping, 30, "%s to answer PING" % self.names[i])

    def start(self, i):
        workdir = os.path.join(self.dir, "w%d" % i)
        os.makedirs(workdir, exist_ok=True)
        self.nodes[i] = Server(self.argv(i), PORT, workdir)
        self._wait_ready(i)
        return self.nodes[i]

    def start_all(self):
        for i in range(len(self.nodes)):
            workdir = os.path.join(self.dir, "w%d" % i)
            os.makedirs(workdir, exist_ok=True)
            self.nodes[i] = Server(self.argv(i), PORT, workdir)
        for i in range(len(self.nodes)):
            self._wait_ready(i)

    def role(self, i):
        try:
            text = self.cmd(i, "INFO", "replication")
            kv = dict(l.split(":", 1) for l in text.decode().splitlines() if ":" in l)
            return kv["raft_role"], int(kv["raft_term"])
        except (OSError, KeyError, ValueError, AttributeError):
            return None, None

    def isolate(self, i):
        """Cuts node i off: its bridge port leaves the bridge (both directions drop)."""
        _ip("-n", self.sw, "link", "set", self.ports_in_bridge[i], "nomaster")

    def heal(self, i):
        _ip("-n", self.sw, "link", "set", self.ports_in_bridge[i], "master", "br0")

    def stop_all(self):
        try:
            return super().stop_all()
        finally:
            self._teardown()

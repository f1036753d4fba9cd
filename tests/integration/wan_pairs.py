"""Helpers of the WAN link tests (docs/wan.md): clusters linked through a TCP proxy the test
cuts, commands with the cluster's password, contents compared, a link added once a metadata
leader takes it, halyctl."""

import json
import os
import socket
import subprocess
import threading

import pytest

from cluster import Cluster, is_error
from conftest import RawConn, wait_for


class CutProxy:
    """Forwards 127.0.0.1:port to a target port until cut: then every connection is closed
    and new ones are closed on arrival, until healed."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = []
        self.is_cut = False
        self.done = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            with self.lock:
                if self.is_cut:
                    c.close()
                    continue
                try:
                    u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
                except OSError:
                    c.close()
                    continue
                self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.is_cut = True
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.socks = []

    def heal(self):
        with self.lock:
            self.is_cut = False

    def close(self):
        self.cut()
        self.done = True
        self.thread.join(timeout=5)
        self.lsock.close()



def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def cmd(c, *args, node=0):
    """One command on member `node` of cluster c, after AUTH when c has a requirepass."""
    with RawConn(c.ports[node], timeout=5.0) as r:
        if c.extra.get("requirepass"):
            r.cmd("AUTH", c.extra["requirepass"])
        return r.cmd(*args)


def status(c, node=0):
    return json.loads(text(cmd(c, "HALYARD", "WAN", "STATUS", "JSON", node=node)))


def parts(c):
    """The partitions c's member 0 leads on its first link."""
    return status(c)["links"][0]["partitions"]


def content(c):
    """Every key of c: strings as text, hashes as sorted pairs, other types by type only."""
    out = {}
    with RawConn(c.ports[0], timeout=10.0) as r:
        if c.extra.get("requirepass"):
            r.cmd("AUTH", c.extra["requirepass"])
        for k in r.cmd("KEYS", "*"):
            t = text(r.cmd("TYPE", k))
            if t == "string":
                v = text(r.cmd("GET", k))
            elif t == "hash":
                flat = r.cmd("HGETALL", k)
                v = tuple(sorted(zip(flat[0::2], flat[1::2])))
            else:
                v = None
            out[text(k)] = (t, v)
    return out


def peer(c, i=0):
    """Member i of c's peer port (Cluster: client port + 10000): what a link's --to names
    (docs/multi-region.md "The link's transport")."""
    return c.ports[i] + 10000


def add_link(src, to, *more):
    """HALYARD WAN ADD dr <to> <more...> on src, once its metadata group has a leader."""
    got = []

    def added():
        got[:] = [cmd(src, "HALYARD", "WAN", "ADD", "dr", to, *more)]
        return not is_error(got[0], "TRYAGAIN")

    wait_for(added, 30, "a metadata leader to take the link")
    assert got[0] == "OK", got


def halyctl(c, *args, node=0):
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    auth = ["-a", c.extra["requirepass"]] if c.extra.get("requirepass") else []
    return subprocess.run([exe, "-p", str(c.ports[node])] + auth + list(args),
                          capture_output=True, text=True, timeout=30)


def halyctl_change(c, *args, node=0):
    """halyctl for a change the metadata group makes (wan add, wan promote): tried again while
    it answers TRYAGAIN (no metadata leader known for a moment, e.g. during an election), for
    30 s; returns the last run."""
    last = []

    def done():
        last[:] = [halyctl(c, *args, node=node)]
        return last[0].returncode == 0 or "TRYAGAIN" not in last[0].stderr

    wait_for(done, 30, "halyctl %s without TRYAGAIN" % " ".join(args[:2]))
    return last[0]


def wait_same(a, b, deadline_s=60, also=lambda: True):
    """Waits until a and b hold the same content (and `also` holds); returns it. On a timeout,
    prints the first differences, both WAN STATUS and the logs' ends."""
    last = {}

    def same():
        x, y = content(a), content(b)
        last["diff"] = sorted(set(x.items()) ^ set(y.items()), key=repr)[:6]
        return x == y and also()

    try:
        wait_for(same, deadline_s, "both clusters to hold the same content", interval=0.25)
    except AssertionError:
        print("first differences:", last.get("diff"))
        for c in (a, b):
            print(json.dumps(status(c)))
            for nd in c.nodes:
                print(nd.log_path, open(nd.log_path).read()[-3000:])
        raise
    return content(a)


@pytest.fixture
def wan_clusters(tmp_path_factory):
    """make(n, extra) starts a cluster; proxy(port) a CutProxy to a port; all stopped after."""
    made, proxies = [], []

    class Maker:
        def cluster(self, n, extra):
            c = Cluster(tmp_path_factory, n, extra)
            made.append(c)
            c.start_all()
            return c

        def two(self, parts, east=None, west=None, west_nodes=1):
            """east (1 node, password pe) and west (west_nodes, password pw), each with `parts`
            partitions and the extra settings given."""
            e = dict({"partitions": parts, "cluster-name": "east", "requirepass": "pe"},
                     **(east or {}))
            w = dict({"partitions": parts, "cluster-name": "west", "requirepass": "pw"},
                     **(west or {}))
            return self.cluster(1, e), self.cluster(west_nodes, w)

        def proxy(self, port):
            p = CutProxy(port)
            proxies.append(p)
            return p

    yield Maker()
    for p in proxies:
        p.close()
    errors = []
    for c in made:
        errors += c.stop_all()
    assert not errors, "\n".join(errors)

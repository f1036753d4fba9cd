"""Membership changes at run time with real processes: --join (learner, caught up, promoted),
--role observer, HALYARD JOIN/REMOVE and halyctl cluster join/remove, restarts that need no
flags beyond identity, and two nodes added and two removed under a checked workload."""

import json
import os
import signal
import subprocess

import pytest

from cluster import SECRET, Cluster, free_port_pair, info
from conftest import ProtocolError, RawConn, RespError, Server, wait_for
from workload import Workload, verify

pytestmark = pytest.mark.halyard_only

EXTRA = {"request-timeout-ms": 1000}
SEED = int(os.environ.get("HY_FAULT_SEED", "1"))


class GrowingCluster(Cluster):
    """A Cluster whose later nodes start with --join instead of --bootstrap."""

    def __init__(self, tmp_path_factory, n=3, extra=None):
        super().__init__(tmp_path_factory, n, extra)
        self.joiners = {}  # index -> (join target "host:peerport", role)

    def argv(self, i):
        if i not in self.joiners:
            return super().argv(i)
        target, role = self.joiners[i]
        a = [self.bin, "--node-id", self.names[i], "--bind", "127.0.0.1", "--port", str(self.ports[i]),
             "--peer-port", str(self.ports[i] + 10000), "--data-dir", os.path.join(self.dir, self.names[i]),
             "--cluster-secret", SECRET, "--join", target, "--role", role]
        for k, v in self.extra.items():
            a += ["--" + k, str(v)]
        return a

    def add(self, via, role="voter"):
        """Starts a new node that joins through node `via`; returns its index."""
        i = len(self.nodes)
        self.ports.append(free_port_pair())
        self.names.append("n%d" % (i + 1))
        self.nodes.append(None)
        self.joiners[i] = ("127.0.0.1:%d" % (self.ports[via] + 10000), role)
        self.start(i)
        return i

    def restart_bare(self, i):
        """Restarts node i with its identity only: no --bootstrap, no --join."""
        a = [self.bin, "--node-id", self.names[i], "--bind", "127.0.0.1", "--port", str(self.ports[i]),
             "--peer-port", str(self.ports[i] + 10000), "--data-dir", os.path.join(self.dir, self.names[i]),
             "--cluster-secret", SECRET]
        for k, v in self.extra.items():
            a += ["--" + k, str(v)]
        workdir = os.path.join(self.dir, "w%d" % i)
        os.rename(os.path.join(workdir, "server.log"), os.path.join(workdir, "server.log.%d" % os.getpid()))
        self.nodes[i] = Server(a, self.ports[i], workdir)
        self.nodes[i].wait_ready()


@pytest.fixture
def grow(tmp_path_factory):
    made = []

    def make(n=3):
        c = GrowingCluster(tmp_path_factory, n, dict(EXTRA))
        made.append(c)
        c.start_all()
        c.leader()
        return c

    yield make
    errors = []
    for c in made:
        errors += c.stop_all()
    assert not errors, errors


def status(port):
    with RawConn(port, timeout=5) as c:
        r = c.cmd("HALYARD", "STATUS", "JSON")
    assert not isinstance(r, RespError), r
    return json.loads(r)


def roles(c, port=None):
    """{member name: role} as the leader reports it."""
    port = port or c.ports[c.leader()]
    return {m["name"]: m["role"] for m in status(port)["members"]}


def wait_roles(c, want, deadline_s=30):
    """Waits until the leader reports each listed member with the wanted role (None: absent)."""
    seen = {}

    def check():
        try:
            seen["roles"] = r = roles(c)
        except ProtocolError:
            raise  # garbage from the server is a failure, not "not yet"
        except (OSError, AssertionError):  # no leader yet, or it answered an error reply
            return False
        return all(r.get(name) == role or (role == "follower" and r.get(name) == "leader")
                   for name, role in want.items())

    wait_for(check, deadline_s, "members %r (last seen %r)" % (want, seen))


def cmd(port, *args):
    with RawConn(port, timeout=10) as c:
        return c.cmd(*args)


def halyctl(port, *args):
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    return subprocess.run([exe, "-p", str(port)] + list(args), capture_output=True, text=True, timeout=60)


def test_joined_node_catches_up_is_promoted_and_restarts_bare(grow):
    """A node started with --join becomes a learner, catches up (keys written before it
    existed are there), is promoted to voter, and after kill -9 restarts from its data dir
    with no --join flag."""
    c = grow(3)
    li = c.leader()
    for k in range(200):
        assert cmd(c.ports[li], "SET", "pre%d" % k, str(k)) == "OK"
    # Compact the leader's log: the newcomer must be sent a snapshot.
    assert cmd(c.ports[li], "HALYARD", "SNAPSHOT") == "OK snapshot taken"
    assert int(info(c.ports[li])["raft_snapshot_index"]) > 0
    j = c.add(via=(li + 1) % 3)
    wait_roles(c, {"n4": "follower"})
    st = status(c.ports[j])
    assert st["leader"] is not None and st["role"] in ("follower", "leader")
    assert cmd(c.ports[li], "SET", "post", "x") == "OK"
    wait_for(lambda: int(info(c.ports[j])["raft_applied_index"]) >= int(info(c.ports[li])["raft_commit_index"]),
             20, "n4 to apply the leader's commit index")
    with RawConn(c.ports[j]) as conn:
        assert conn.cmd("READONLY") == "OK"
        assert conn.cmd("GET", "pre0") == b"0" and conn.cmd("GET", "pre199") == b"199"
        assert conn.cmd("GET", "post") == b"x"
    # Four voters now: the join is in every member's CLUSTER NODES.
    for i in range(4):
        wait_for(lambda i=i: len(cmd(c.ports[i], "CLUSTER", "NODES").decode().strip().splitlines()) == 4, 10,
                 "CLUSTER NODES on %s to list 4 nodes" % c.names[i])
    c.kill(j, signal.SIGKILL)
    c.restart_bare(j)
    wait_for(lambda: info(c.ports[j])["raft_role"] in ("follower", "leader"), 20, "n4 to rejoin after restart")
    assert cmd(c.ports[j], "GET", "post") == b"x"  # proxied, linearizable


def test_observer_never_votes(grow):
    """--role observer stays a learner: it replicates and serves READONLY reads, but is not
    counted in the quorum and is never promoted."""
    c = grow(3)
    li = c.leader()
    o = c.add(via=li, role="observer")
    wait_roles(c, {"n4": "observer"})
    assert cmd(c.ports[li], "SET", "seen-by-observer", "1") == "OK"
    wait_for(lambda: int(info(c.ports[o])["raft_applied_index"]) >= int(info(c.ports[li])["raft_commit_index"]),
             20, "the observer to catch up")
    with RawConn(c.ports[o]) as conn:
        assert conn.cmd("READONLY") == "OK" and conn.cmd("GET", "seen-by-observer") == b"1"
    # Writes through the observer are forwarded to the leader.
    assert cmd(c.ports[o], "SET", "via-observer", "2") == "OK"
    assert roles(c)["n4"] == "observer"
    # Killing two voters leaves 1 voter + the observer: no quorum, the observer does not count.
    victims = [i for i in range(3) if i != li][:2]
    for v in victims:
        c.kill(v, signal.SIGKILL)
    r = cmd(c.ports[li], "SET", "after", "1")
    assert isinstance(r, RespError) and r.startswith(("UNKNOWN", "NOQUORUM", "TRYAGAIN")), r
    # A voter cannot be turned into an observer by JOIN.
    for v in victims:
        c.start(v)
    li = c.leader(deadline_s=20)
    r = cmd(c.ports[li], "HALYARD", "JOIN", c.names[(li + 1) % 3], "127.0.0.1", str(c.ports[(li + 1) % 3] + 10000),
            "OBSERVER")
    assert isinstance(r, RespError) and "is a voter" in r, r


def test_join_and_remove_errors(grow):
    c = grow(3)
    li = c.leader()
    p = c.ports[li]
    for args, needle in [
        (("HALYARD", "JOIN", "bad name", "127.0.0.1", "20000"), "invalid node name"),
        (("HALYARD", "JOIN", "n9", "127.0.0.1", "80"), "invalid peer port"),
        (("HALYARD", "JOIN", "n9", "127.0.0.1", "20000", "KING"), "VOTER or OBSERVER"),
        (("HALYARD", "REMOVE", "nobody"), "no such member"),
        (("HALYARD", "JOIN", "n9"), "syntax"),
    ]:
        r = cmd(p, *args)
        assert isinstance(r, RespError) and needle in r, (args, r)
    # Removing down to one voter works; the last voter cannot be removed.
    for victim in [i for i in range(3) if i != li]:
        assert halyctl(p, "cluster", "remove", c.names[victim]).returncode == 0
    wait_roles(c, {c.names[i]: None for i in range(3) if i != li})
    r = cmd(p, "HALYARD", "REMOVE", c.names[li])
    assert isinstance(r, RespError) and "last voter" in r, r
    assert cmd(p, "SET", "alone", "1") == "OK"  # a one-voter cluster commits by itself


def test_bootstrap_node_restarts_without_flags(grow):
    """The bootstrap list is kept in the data dir: a member restarted with its identity only
    (after the others restarted too) forms the same cluster and keeps the data."""
    c = grow(3)
    li = c.leader()
    assert cmd(c.ports[li], "SET", "kept", "v") == "OK"
    for i in range(3):
        c.kill(i, signal.SIGKILL)
    for i in range(3):
        c.restart_bare(i)
    li = c.leader(deadline_s=20)
    assert cmd(c.ports[li], "GET", "kept") == b"v"
    assert sorted(roles(c)) == ["n1", "n2", "n3"]


def test_two_added_and_two_removed_under_load(grow):
    """Issue 5, fault test 5: under a concurrent checked workload, n4 and n5 join (--join),
    then a follower and then the leader of the moment are removed, and the removed processes
    stop; nothing acknowledged is lost and the history is linearizable."""
    c = grow(3)
    wl = Workload(list(c.ports), seed=SEED).start()
    try:
        wl.wait_progress(100, 20)
        for _ in range(2):
            i = c.add(via=c.leader())
            wait_roles(c, {c.names[i]: "follower"})
            wl.ports.append(c.ports[i])
            wl.wait_progress(50, 20, "writes acknowledged after %s joined" % c.names[i])
        # Remove a follower, then whoever leads then (a leader removing itself hands over).
        li = c.leader()
        victims = [next(i for i in range(3) if i != li)]
        victims.append(c.leader())
        for victim in victims:
            via = next(i for i in range(len(c.nodes)) if i not in victims)
            r = halyctl(c.ports[via], "cluster", "remove", c.names[victim])
            assert r.returncode == 0, r.stdout + r.stderr
            wait_roles(c, {c.names[victim]: None}, deadline_s=30)
            wl.wait_progress(50, 20, "writes acknowledged after %s was removed" % c.names[victim])
        assert sorted(roles(c)) == sorted(c.names[i] for i in range(5) if i not in victims)
        wl.wait_progress(100, 20)
    finally:
        wl.stop()
    for victim in victims:
        c.nodes[victim].stop()
    summary = verify(c, wl)
    print("\nmembership under load seed=%d: %s\n  logs: %s" % (SEED, summary, c.dir))


def test_force_quorum_after_losing_a_majority(grow):
    """Two of three members are lost for good (kill -9, data dirs deleted): the survivor
    cannot write. cluster force-quorum --confirm-data-loss makes it the only voter; it keeps
    what it had, writes again, a new node joins and is promoted, the lost ones are removed."""
    c = grow(3)
    li = c.leader()
    r = cmd(c.ports[li], "HALYARD", "FORCE-QUORUM", "CONFIRM-DATA-LOSS")
    assert isinstance(r, RespError) and "working majority" in r, r
    for k in range(50):
        assert cmd(c.ports[li], "SET", "f%d" % k, str(k)) == "OK"
    s = (li + 1) % 3
    wait_for(lambda: int(info(c.ports[s])["raft_applied_index"]) >= int(info(c.ports[li])["raft_commit_index"]),
             20, "the survivor to catch up")
    lost = [i for i in range(3) if i != s]
    for i in lost:
        c.kill(i, signal.SIGKILL)
        subprocess.run(["rm", "-rf", os.path.join(c.dir, c.names[i])], check=True)
    r = cmd(c.ports[s], "SET", "no-quorum", "1")
    assert isinstance(r, RespError) and r.startswith(("NOQUORUM", "TRYAGAIN", "UNKNOWN")), r
    r = cmd(c.ports[s], "HALYARD", "FORCE-QUORUM")
    assert isinstance(r, RespError) and "CONFIRM-DATA-LOSS" in r, r
    out = halyctl(c.ports[s], "cluster", "force-quorum", "--confirm-data-loss")
    assert out.returncode == 0 and "only voter" in out.stdout, out.stdout + out.stderr
    wait_for(lambda: info(c.ports[s])["raft_role"] == "leader", 10, "the survivor to lead")
    assert cmd(c.ports[s], "SET", "after-force", "1") == "OK"
    assert cmd(c.ports[s], "GET", "f49") == b"49"
    for i in lost:
        assert halyctl(c.ports[s], "cluster", "remove", c.names[i]).returncode == 0
    j = c.add(via=s)
    wait_roles(c, {c.names[j]: "follower", c.names[lost[0]]: None, c.names[lost[1]]: None})
    assert cmd(c.ports[j], "GET", "after-force") == b"1"
    c.nodes[lost[0]] = c.nodes[lost[1]] = None  # gone for good

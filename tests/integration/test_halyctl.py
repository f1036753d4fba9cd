"""halyctl against a real 3-node cluster: status (text and JSON), failover, snapshot."""

import json
import os
import subprocess

import pytest

from cluster import Cluster, info
from conftest import RawConn, check_workers, join_all, start_workers, wait_for

pytestmark = pytest.mark.halyard_only


def halyctl(port, *args):
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    return subprocess.run([exe, "-p", str(port)] + list(args), capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


def test_status_text_and_json_agree_with_info(cluster):
    """cluster status names the leader, term and members, in text and in JSON."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10, "the follower to know the leader")
    r = halyctl(cluster.ports[fi], "--json", "cluster", "status")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["node"] == cluster.names[fi] and st["role"] == "follower"
    assert st["leader"] == cluster.names[li]
    assert st["has_quorum"] is True
    assert st["term"] == int(info(cluster.ports[fi])["raft_term"])
    assert sorted(m["name"] for m in st["members"]) == sorted(cluster.names)
    assert [m["role"] for m in st["members"] if m["name"] == cluster.names[li]] == ["leader"]
    t = halyctl(cluster.ports[li], "cluster", "status")
    assert t.returncode == 0 and "role: leader" in t.stdout and "(this node)" in t.stdout


def test_failover_hands_leadership_over(cluster):
    """cluster failover (from any node) moves leadership; --to picks the new leader."""
    li = cluster.leader()
    fi = (li + 1) % 3
    # halyctl itself waits up to 3 s for the member to learn who leads; on a loaded machine
    # make sure it has before asking.
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10,
             "the follower to know the leader")
    term = cluster.term(li)
    r = halyctl(cluster.ports[fi], "cluster", "failover")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "leader is now" in r.stdout
    ni = cluster.leader(exclude=(li,))
    assert cluster.term(ni) > term, "%s leads in term %d, as before the failover" % (cluster.names[ni], term)
    assert cluster.names[ni] in r.stdout, r.stdout  # halyctl names the node that took over
    target = [i for i in range(3) if i != ni][0]
    r = halyctl(cluster.ports[ni], "cluster", "failover", "--to", cluster.names[target])
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: cluster.role(target)[0] == "leader", 10, "the named node to lead")


def test_writes_wait_out_a_leadership_transfer(cluster):
    """Writers connected to the leader while it hands leadership over see no error: their
    writes wait for the transfer and then go to the new leader (forwarded once, §3.10)."""
    import threading
    for _ in range(3):
        li = cluster.leader()
        term = cluster.term(li)
        wait_for(lambda: all(info(p)["raft_leader"] == info(cluster.ports[li])["raft_leader"]
                             for p in cluster.ports), 10, "every member to follow the leader")
        replies, stop = [], threading.Event()

        def writer(k):
            with RawConn(cluster.ports[li], timeout=10) as c:
                n = 0
                while not stop.is_set():
                    replies.append(c.cmd("SET", "t%d-%d" % (k, n), n))
                    n += 1

        # A writer that dies (a reset connection, an exception) fails the test: Worker keeps
        # its exception and join_all raises it; the waits below check on every poll.
        threads = start_workers(writer, [(k,) for k in range(4)], name="writer")
        try:
            wait_for(lambda: check_workers(threads) and len(replies) > 100, 10, "writes before the transfer")
            r = halyctl(cluster.ports[li], "cluster", "failover")
            assert r.returncode == 0, r.stdout + r.stderr
            count = len(replies)
            wait_for(lambda: check_workers(threads) and len(replies) > count + 100, 10,
                     "writes after the transfer")
        finally:
            stop.set()
            join_all(threads, 15)
        assert cluster.term(cluster.leader(exclude=(li,))) > term, "no new term after the transfer"
        errors = [r for r in replies if r != "OK"]
        assert not errors, errors[:5]


def test_snapshot_command(cluster):
    """snapshot compacts the log: the snapshot index reaches the applied index."""
    li = cluster.leader()
    from conftest import RawConn
    with RawConn(cluster.ports[li]) as c:
        for i in range(100):
            assert c.cmd("SET", "s%d" % i, i) == "OK"
    r = halyctl(cluster.ports[li], "snapshot")
    assert r.returncode == 0 and "snapshot taken" in r.stdout, r.stdout + r.stderr
    st = info(cluster.ports[li])
    assert int(st["raft_snapshot_index"]) >= 100


def test_status_reports_follower_lag(cluster):
    """The leader's status shows each follower's lag; a frozen follower falls behind, then catches up."""
    import signal

    from conftest import RawConn

    li = cluster.leader()
    fi = (li + 1) % 3
    cluster.kill(fi, signal.SIGSTOP)
    try:
        with RawConn(cluster.ports[li]) as c:
            for i in range(50):
                assert c.cmd("SET", "lag%d" % i, i) == "OK"  # the other follower is a majority

        def lag_of(name):
            st = json.loads(halyctl(cluster.ports[li], "--json", "cluster", "status").stdout)
            return [m for m in st["members"] if m["name"] == name][0]

        frozen = lag_of(cluster.names[fi])
        assert frozen["lag_entries"] >= 50, frozen
        assert frozen["match_index"] < int(info(cluster.ports[li])["raft_commit_index"])
    finally:
        cluster.kill(fi, signal.SIGCONT)
    wait_for(lambda: lag_of(cluster.names[fi])["lag_entries"] == 0, 10, "the follower to catch up")


def test_node_drain_hands_over_and_exits_cleanly(cluster):
    """node drain on the leader hands leadership to another member and the node exits 0."""
    from conftest import RawConn

    li = cluster.leader()
    with RawConn(cluster.ports[li]) as c:
        for i in range(20):
            assert c.cmd("SET", "d%d" % i, i) == "OK"
    r = halyctl(cluster.ports[li], "node", "drain")
    assert r.returncode == 0, r.stdout + r.stderr
    assert cluster.nodes[li].wait_exit(10) == 0
    cluster.nodes[li]._stopped = True
    ni = cluster.leader(exclude=(li,))
    with RawConn(cluster.ports[ni]) as c:
        assert c.cmd("GET", "d19") == b"19"
        assert c.cmd("SET", "after-drain", "1") == "OK"

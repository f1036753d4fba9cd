"""Power cuts on real files (issue 19): what survives a power cut, not just a kill -9.

Both tests run on top of the shared power-loss tool (../shared/tools: an LD_PRELOAD shim that
logs every file-system change and pl_replay.py, which rebuilds what a power cut could leave:
strict rounds drop every unsynced change, random rounds keep, drop or tear each at random).
Rounds are bounded here (HALYARD_POWERLOSS_ROUNDS, HALYARD_POWERLOSS_CLUSTER_ROUNDS raise them
for a long run)."""

import os
import re
import shutil
import subprocess
import sys

import powerloss_cluster
from cluster import free_port_pair
from conftest import Server

ROUNDS = int(os.environ.get("HALYARD_POWERLOSS_ROUNDS", "8"))
CLUSTER_ROUNDS = int(os.environ.get("HALYARD_POWERLOSS_CLUSTER_ROUNDS", "6"))


def test_single_node_power_cuts_from_first_start():
    """A single node cut from power from its very first start (no warm-up: the directories and
    files it creates then are under test), strict and random rounds, loses no acknowledged
    write and always starts again."""
    tools = powerloss_cluster.tools_dir()
    port = free_port_pair()
    p = subprocess.run([sys.executable, os.path.join(tools, "powerloss_loop.py"),
                        os.environ["HALYARD_BIN"], str(port), str(ROUNDS)],
                       capture_output=True, text=True, timeout=120 + 40 * ROUNDS)
    out = p.stdout + p.stderr
    summary = [l for l in out.splitlines() if re.match(r"powerloss: \d+ rounds", l)]
    assert summary, "no summary line from the power-loss loop:\n" + out[-4000:]
    m = re.match(r"powerloss: (\d+) rounds, (\d+) acknowledged writes, (\d+) lost, (\d+) failed",
                 summary[-1])
    assert m, summary[-1]
    rounds, acks, lost, failed = (int(x) for x in m.groups())
    assert (rounds, lost, failed) == (ROUNDS, 0, 0), out[-4000:]
    assert acks > 0, "nothing was acknowledged: the loop tested nothing\n" + out[-4000:]
    assert p.returncode == 0, out[-4000:]


def test_whole_cluster_power_cut():
    """A 3-node cluster, every node under the shim and all cut at once, from the cluster's
    very first start: no acknowledged write is lost, no node forgets its vote, every node
    starts again."""
    lines = []
    rounds, acks, lost, failed, forgotten, work = powerloss_cluster.run(
        os.environ["HALYARD_BIN"], CLUSTER_ROUNDS, say=lines.append)
    report = "\n".join(lines[-40:]) + "\n(work dir %s)" % work
    assert (rounds, lost, failed, forgotten) == (CLUSTER_ROUNDS, 0, 0, 0), report
    assert acks > 0, "nothing was acknowledged: the loop tested nothing\n" + report


def _formed_node(servers):
    """A lone node that acknowledged writes, stopped; returns (server, its data dir)."""
    s = servers.start()
    with s.raw() as c:
        for i in range(20):
            assert c.cmd("SET", "k%d" % i, "v%d" % i) == "OK"
    s.stop()
    servers.servers.remove(s)
    return s, os.path.join(s.workdir, "data")


def _refused(s, *words):
    """Starts s's command again and asserts it exits non-zero with every word in its log."""
    bad = Server(s.argv, s.port, s.workdir)
    rc = bad.wait_exit()
    if rc is None:  # it runs: stop it by PID, then fail
        bad.proc.kill()
        bad.proc.wait()
    bad.log.close()
    log = bad.log_tail()
    assert rc not in (None, 0), "it started:\n" + log
    for w in words:
        assert w in log, "%r not in the log:\n%s" % (w, log)


def test_cluster_file_without_log_refuses_to_start(servers):
    """A data dir whose cluster file says it was formed but whose Raft log is gone (a partial
    restore, a lost directory) refuses to start, naming the file, instead of starting empty
    as a new node; and the refusal writes nothing, so it refuses again."""
    s, ddir = _formed_node(servers)
    assert os.path.exists(os.path.join(ddir, "cluster"))
    shutil.rmtree(os.path.join(ddir, "wal"))
    _refused(s, "/wal/", "log was lost")
    assert not [f for f in os.listdir(os.path.join(ddir, "wal")) if f.startswith(("open-", "segment-"))]
    _refused(s, "/wal/", "log was lost")


def test_log_without_term_vote_file_refuses_to_start(servers):
    """A log whose term/vote records are gone (its segments deleted, a snapshot left) refuses
    to start, naming the log: the node could otherwise vote twice in a term."""
    s, ddir = _formed_node(servers)
    wal = os.path.join(ddir, "wal")
    for name in os.listdir(wal):
        if name.startswith(("open-", "segment-")):
            os.unlink(os.path.join(wal, name))
    _refused(s, "/wal/", "term/vote")


def test_old_per_group_layout_refused(servers):
    """A data dir in the per-group layout of earlier versions (DATA_DIR/group-N, before the
    node's shared log) is refused with a message naming the layout, and nothing in it is
    changed (docs/disk-format.md "Layout versions")."""
    s, ddir = _formed_node(servers)
    old = os.path.join(ddir, "group-0")
    os.makedirs(old)
    with open(os.path.join(old, "metadata1"), "wb") as f:
        f.write(b"\0" * 48)
    _refused(s, "per-group log layout", "group-N")
    assert sorted(os.listdir(old)) == ["metadata1"]
    assert open(os.path.join(old, "metadata1"), "rb").read() == b"\0" * 48

#!/usr/bin/python3
"""Power cuts of a whole 3-node cluster on real files (issue 19), built on the shared power-loss
tool (../shared/tools/powerloss: the LD_PRELOAD shim that logs every file-system change, and
pl_replay.py that rebuilds what a power cut could leave).

Each round: every node's data dir is copied as its base; all three nodes start under the shim
(round 0: a brand-new cluster, from its very first start); 4 clients SET unique keys and INCR
a counter through all three nodes (followers proxy to the leader), remembering every
acknowledgment; after 0.5-3 s every node is SIGKILLed at once; each data dir is replaced by what
pl_replay says a power cut could leave (even rounds --strict: every unsynced op dropped; odd
rounds random); the nodes start again without the shim. A round fails when
  - a node does not start (a failed start),
  - an acknowledged SET or the counter's highest acknowledged value is missing (a loss),
  - a node forgot its vote: the term/vote file the power cut left holds an older state than
    the newest one the op log shows was fdatasync'd (a Raft safety violation).

usage: powerloss_cluster.py HALYARD_BINARY ROUNDS
Last line: 'powerloss-cluster: N rounds, A acknowledged writes, L lost, S failed starts,
V forgotten votes'; exit 0 iff L == S == V == 0. Evidence of a bad round stays in the work dir.
"""
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import redis

SECRET = "powerloss-secret"
CTR = "plc:ctr"
N = 3


def tools_dir():
    """The shared power-loss tool: $HALYARD_POWERLOSS_TOOLS, else ../shared/tools beside the
    repository, else /work/shared/tools."""
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    for d in (os.environ.get("HALYARD_POWERLOSS_TOOLS"),
              os.path.join(os.path.dirname(repo), "shared", "tools"), "/work/shared/tools"):
        if d and os.path.isfile(os.path.join(d, "powerloss", "pl_replay.py")):
            return d
    raise RuntimeError("the power-loss tool (shared/tools/powerloss) was not found; "
                       "set HALYARD_POWERLOSS_TOOLS to the folder holding it")


def build_shim(tools, out_dir):
    shim = os.path.join(out_dir, "pl_shim.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim,
                    os.path.join(tools, "powerloss", "pl_shim.c"), "-ldl", "-lpthread"], check=True)
    return shim


def wait_until(cond, deadline_s, what):
    end = time.time() + deadline_s
    while time.time() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError(what)


class Node:
    def __init__(self, binary, name, port, ddir, bootstrap):
        self.binary, self.name, self.port, self.ddir = binary, name, port, ddir
        self.bootstrap, self.p, self.logpath = bootstrap, None, None

    def start(self, logpath, env=None):
        self.logpath = logpath
        argv = [self.binary, "--node-id", self.name, "--bind", "127.0.0.1",
                "--port", str(self.port), "--peer-port", str(self.port + 10000),
                "--http-port", str(self.port + 1000), "--data-dir", self.ddir,
                "--bootstrap", self.bootstrap, "--cluster-secret", SECRET]
        with open(logpath, "ab") as log:
            self.p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def role(self):
        try:
            r = redis.Redis("127.0.0.1", self.port, socket_timeout=1, socket_connect_timeout=1)
            return r.info("replication").get("raft_role")
        except (redis.RedisError, OSError):
            return None

    def kill(self):
        if self.p is None:
            return
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def tail(self, n=12):
        with open(self.logpath, "rb") as f:
            return [l.decode(errors="replace").rstrip() for l in f.readlines()[-n:]]


def cluster_ready(nodes, deadline_s):
    """Waits until every node runs and one leads; returns the leader, or raises."""
    def check():
        if not all(n.alive() for n in nodes):
            raise RuntimeError("a node exited")
        roles = [n.role() for n in nodes]
        leaders = [n for n, r in zip(nodes, roles) if r == "leader"]
        return leaders[0] if leaders and all(roles) else None
    return wait_until(check, deadline_s, "no leader within %d s" % deadline_s)


def write_load(nodes, rnd, acked, top, lock, stop):
    """4 writers, spread over every node, until stop: SET of unique keys and INCR."""
    errors = []

    def writer(w):
        node = nodes[w % len(nodes)]
        r = redis.Redis("127.0.0.1", node.port, socket_timeout=3, socket_connect_timeout=1)
        rng, i = random.Random(rnd * 100 + w), 0
        while not stop.is_set():
            i += 1
            try:
                if i % 5 == 0:
                    n = r.incr(CTR)
                    with lock:
                        top[0], top[1] = max(top[0], n), top[1] + 1
                else:
                    k = "plc:%d:%d:%d" % (rnd, w, i)
                    v = "%s=%s" % (k, os.urandom(rng.randrange(2, 200)).hex())
                    if r.set(k, v):
                        with lock:
                            acked[k], top[1] = v, top[1] + 1
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError):
                # -UNKNOWN, a reset by the kill: not acknowledged, so not counted.
                stop.wait(0.01)
            except Exception as e:  # anything else is a defect of the test or the server
                errors.append(repr(e))
                return

    ts = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
    for t in ts:
        t.start()
    return ts, errors


REC = struct.Struct("<IIQIHHQQ")  # crc, len, seq, group, kind, type, index/term, term/vote


def tv_records(data, group=0):
    """(seq, term, vote) of every term/vote record of `group` in bytes of the shared log that
    start at a record boundary (docs/disk-format.md, "Segments"); stops at zeros or junk."""
    out, off = [], 0
    while off + REC.size <= len(data):
        _crc, n, seq, g, kind, _t, a, b = REC.unpack_from(data, off)
        if seq == 0 or kind not in (1, 2, 3):
            break
        if kind == 2 and g == group:
            out.append((seq, a, b))
        off += REC.size + ((n + 7) & ~7)
    return out


def durable_meta_seq(oplog):
    """The highest write sequence of a term/vote record of group 0 that the op log shows
    fdatasync'd: WRITEs into wal/open-N covered by a later FSYNC of the same file (its start
    is after the write's record)."""
    buf = open(oplog, "rb").read()
    writes, syncs, pos = {}, {}, 0   # path -> [(record pos, sequence)], path -> [fsync starts]
    while pos < len(buf):
        nl = buf.find(b"\n", pos)
        if nl < 0:
            break
        f = buf[pos:nl].decode("utf-8", "surrogateescape").split("\t")
        end = nl + 1
        if f[0] == "WRITE" and f[5] == "raw":
            end += int(f[4])
            if end > len(buf):
                break
            data = buf[nl + 1:end]
            if f[2].startswith("wal/open-") and int(f[3]) >= 16:
                for seq, _term, _vote in tv_records(data):
                    writes.setdefault(f[2], []).append((pos, seq))
        elif f[0] == "FSYNC":
            syncs.setdefault(f[2], []).append(int(f[3]))
        pos = end
    best = 0
    for path, ws in writes.items():
        for wpos, seq in ws:
            if any(start > wpos for start in syncs.get(path, [])):
                best = max(best, seq)
    return best


def dir_meta_seq(ddir):
    """(sequence, term, vote) of the newest term/vote record of group 0 in ddir/wal."""
    best = (0, 0, 0)
    wal = os.path.join(ddir, "wal")
    for name in sorted(os.listdir(wal)) if os.path.isdir(wal) else []:
        if not name.startswith(("open-", "segment-")):
            continue
        data = open(os.path.join(wal, name), "rb").read()
        if data[:8] != b"HYWALSEG":
            continue
        for rec in tv_records(data[16:]):
            best = max(best, rec)
    return best


def verify(leader, acked, top):
    r = redis.Redis("127.0.0.1", leader.port, socket_timeout=20)
    keys, lost = sorted(acked), []
    for i in range(0, len(keys), 500):
        for k, got in zip(keys[i:i + 500], r.mget(keys[i:i + 500])):
            if got is None or got.decode() != acked[k]:
                lost.append((k, acked[k], got))
    ctr = int(r.get(CTR) or 0)
    if ctr < top[0]:
        lost.append((CTR, top[0], ctr))
        top[0] = ctr
    for k, _, _ in lost:
        acked.pop(k, None)
    return lost


def free_ports(n):
    """n client ports P whose P+1000 (HTTP) and P+10000 (peer) are free too, below the
    ephemeral range: cluster.py's, from this pytest-xdist worker's own slice."""
    from cluster import free_port_pair
    return [free_port_pair() for _ in range(n)]


def run(binary, rounds, say=print):
    """Runs the loop; returns (rounds, acknowledged, lost, failed starts, forgotten votes,
    work dir)."""
    tools = tools_dir()
    work = tempfile.mkdtemp(prefix="powerloss-cluster-")
    shim = build_shim(tools, work)
    replay = os.path.join(tools, "powerloss", "pl_replay.py")
    ports = free_ports(N)
    names = ["n%d" % (i + 1) for i in range(N)]
    boot = ",".join("%s@127.0.0.1:%d" % (nm, p + 10000) for nm, p in zip(names, ports))
    nodes = []
    for nm, p in zip(names, ports):
        ddir = os.path.join(work, nm)
        os.mkdir(ddir)
        nodes.append(Node(binary, nm, p, ddir, boot))
    acked, top, lock = {}, [0, 0], threading.Lock()
    lost_total, failed, forgotten, keep = 0, 0, 0, False
    say("powerloss-cluster: %s, work dir %s" % (binary, work))
    for rnd in range(rounds):
        strict, rdir = rnd % 2 == 0, os.path.join(work, "r%d" % rnd)
        os.mkdir(rdir)
        for n in nodes:
            base = os.path.join(rdir, "base-" + n.name)
            shutil.copytree(n.ddir, base)
            env = dict(os.environ, LD_PRELOAD=shim, PL_ROOT=n.ddir,
                       PL_LOG=os.path.join(rdir, "oplog-" + n.name))
            n.start(os.path.join(rdir, "shim-%s.log" % n.name), env)
        try:
            cluster_ready(nodes, 60)
        except (RuntimeError, TimeoutError) as e:
            for n in nodes:
                n.kill()
            raise RuntimeError("round %d: the cluster under the shim did not start (%s):\n%s"
                               % (rnd, e, "\n".join(l for n in nodes for l in n.tail())))
        acks0, stop = top[1], threading.Event()
        writers, errors = write_load(nodes, rnd, acked, top, lock, stop)
        at = random.uniform(0.5, 3.0)
        stop.wait(at)   # the load runs this long; the cut comes at a random moment
        for n in nodes:   # the power cut: every node at once
            os.killpg(n.p.pid, signal.SIGKILL)
        for n in nodes:
            n.kill()
        stop.set()
        for t in writers:
            t.join(10)
        if errors:
            raise RuntimeError("round %d: a writer failed: %s" % (rnd, errors[0]))
        notes = []
        for i, n in enumerate(nodes):
            base, oplog = os.path.join(rdir, "base-" + n.name), os.path.join(rdir, "oplog-" + n.name)
            out = os.path.join(rdir, "replayed-" + n.name)
            rep = subprocess.run([sys.executable, replay, base, oplog, out, "--seed",
                                  str(rnd * N + i), "-v"] + (["--strict"] if strict else []),
                                 capture_output=True, text=True, timeout=600)
            with open(os.path.join(rdir, "replay-%s.txt" % n.name), "w") as f:
                f.write(rep.stdout + rep.stderr)
            if rep.returncode != 0:
                raise RuntimeError("round %d: pl_replay failed for %s:\n%s"
                                   % (rnd, n.name, rep.stderr[-2000:]))
            want, got = durable_meta_seq(oplog), dir_meta_seq(out)
            if got[0] < want:
                forgotten += 1
                keep = True
                notes.append("%s FORGOT ITS VOTE (term/vote sequence %d left, %d was durable)"
                             % (n.name, got[0], want))
            shutil.rmtree(n.ddir)
            shutil.copytree(out, n.ddir)
        for n in nodes:
            n.start(os.path.join(rdir, "after-%s.log" % n.name))
        line = "round %d %s: cut at %.2f s, %d acked" % (rnd, "strict" if strict else "random",
                                                          at, top[1] - acks0)
        try:
            leader = cluster_ready(nodes, 60)
        except (RuntimeError, TimeoutError) as e:
            failed += 1
            keep = True
            down = [n for n in nodes if not n.alive()] or nodes
            say("%s, FAILED START (%s)%s\n  %s" % (line, e, "; " + "; ".join(notes) if notes else "",
                                                   "\n  ".join(l for n in down for l in n.tail())))
            for n in nodes:
                n.kill()
            rounds = rnd + 1   # the next round would start from a cluster that cannot start
            break
        with lock:
            lost = verify(leader, acked, top)
        lost_total += len(lost)
        if lost:
            keep = True
        say("%s, %d lost%s" % (line, len(lost), "; " + "; ".join(notes) if notes else ""))
        for k, want, got in lost[:5]:
            say("  lost %s: acknowledged %r, read %r" % (k, want[:60], got))
        for n in nodes:
            n.stop()
        if not keep:
            shutil.rmtree(rdir)
    if not keep:
        shutil.rmtree(work)
    return rounds, top[1], lost_total, failed, forgotten, work


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rounds, acks, lost, failed, forgotten, work = run(sys.argv[1], int(sys.argv[2]))
    print("powerloss-cluster: %d rounds, %d acknowledged writes, %d lost, %d failed starts, "
          "%d forgotten votes" % (rounds, acks, lost, failed, forgotten))
    if lost or failed or forgotten:
        print("evidence kept in %s" % work)
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long a client's writes stop when a member it depends on is killed with SIGKILL: libhalyard
against hiredis with a hand-written reconnect, on a real 3-node cluster (`make bench-failover`,
`make bench-failover-client`; issue 15).

Each trial starts from a settled cluster (every node up, the restarted one following a leader)
and runs four writers (bench/failover_client.c, one process each, writing SETs one at a time):

  libhalyard        the library's defaults: smart routing sends its writes to the leader
  libhalyard-proxy  smart_routing 0, first address a follower: it writes through that follower
  hiredis           first address the leader; on a lost connection the next address
  hiredis-proxy     first address the same follower

Leader trials kill the leader; follower trials kill that follower. The driver stamps the kill,
waits for the process to be gone, and tells each writer; a writer reports the time from the kill
to its first acknowledged write after it (and the gap around it, and errors / unknown outcomes).
Trials alternate between the two kinds. The killed node is restarted before the next trial.

Then, with a one-node secondary cluster started next to it, `secondary` trials (default 10)
of the failover client (seed 002): a libhalyard writer with the secondary as its failover
cluster (default settings: cluster_connect_timeout_ms 4000), and every primary member killed;
its time is from the kill to its first write acknowledged by the secondary.

Prints every trial, then per kind of trial and writer p50 and p99 (nearest rank; with fewer than
100 trials that is the worst) of the time to the first acknowledged write, and of the gap
between the writer's last acknowledgement before the kill and that one. A benchmark, not a
test: a writer with no acknowledgement within 30 s is reported as such, never left out.

    bench/failover_client.py /abs/path/to/halyard /abs/path/to/failover_client [trials [secondary]]
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster, info  # noqa: E402
from failover import _Tmp, percentile  # noqa: E402  (bench/failover.py: same scaffolding)

DEADLINE_S = 30
WRITERS = ("libhalyard", "libhalyard-proxy", "hiredis", "hiredis-proxy")


def addr(port):
    return "127.0.0.1:%d" % port


def start_writer(tool, kind, first, ports, name):
    order = [first] + [p for p in ports if p != first]
    lib = kind.replace("-proxy", "") if kind.startswith("hiredis") else kind
    return subprocess.Popen([tool, lib, ",".join(addr(p) for p in order), name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def read_line(proc, deadline):
    """The writer's next line, or None at the deadline (select on its stdout)."""
    import select
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            line = proc.stdout.readline()
            return line.strip() if line else None
    return None


def settle(c, i):
    """Waits until node i follows a leader (after its restart)."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        try:
            r = info(c.ports[i])
            if r.get("raft_role") == "follower" and r.get("raft_leader"):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("node %d did not rejoin" % i)


def trial(c, tool, n, kind):
    li = c.leader()
    fi = next(i for i in range(3) if i != li)
    lp, fp = c.ports[li], c.ports[fi]
    firsts = {"libhalyard": lp, "libhalyard-proxy": fp, "hiredis": lp, "hiredis-proxy": fp}
    procs = {w: start_writer(tool, w, firsts[w], c.ports, "t%d-%s" % (n, w)) for w in WRITERS}
    out = {}
    try:
        end = time.monotonic() + DEADLINE_S
        for w, p in procs.items():
            line = read_line(p, end)
            if line != "ready":
                raise RuntimeError("writer %s not ready: %r" % (w, line))
        victim = li if kind == "leader" else fi
        s = c.nodes[victim]
        t_kill = time.monotonic_ns()
        os.kill(s.pid, signal.SIGKILL)
        os.waitpid(s.pid, 0)  # blocks until it is gone (Popen.wait's timeout polls in steps)
        s.proc.returncode, s._stopped = -signal.SIGKILL, True
        for p in procs.values():
            p.stdin.write("mark %d\n" % t_kill)
            p.stdin.flush()
        end = time.monotonic() + DEADLINE_S
        for w, p in procs.items():
            line = read_line(p, end)
            if line and line.startswith("result "):
                out[w] = {k: float(v) for k, v in (x.split("=") for x in line.split()[1:])}
            else:
                out[w] = None
    finally:
        for p in procs.values():
            p.stdin.close()
            p.kill()
            p.wait()
    c.start(victim)
    settle(c, victim)
    return out


def kill_reap(c, i):
    """SIGKILL node i and wait until it is gone (a blocking waitpid: Popen.wait polls)."""
    s = c.nodes[i]
    os.kill(s.pid, signal.SIGKILL)
    os.waitpid(s.pid, 0)
    s.proc.returncode, s._stopped = -signal.SIGKILL, True


def secondary_trial(c, sec, tool, n):
    """Every primary member killed under a failover client: its result, or None."""
    primary = ",".join(addr(p) for p in c.ports)
    p = subprocess.Popen([tool, "libhalyard-failover", primary, "s%d" % n, addr(sec.ports[0])],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    out = None
    try:
        line = read_line(p, time.monotonic() + DEADLINE_S)
        if line != "ready":
            raise RuntimeError("failover writer not ready: %r" % line)
        t_kill = time.monotonic_ns()
        for i in range(len(c.nodes)):
            kill_reap(c, i)
        p.stdin.write("mark %d\n" % t_kill)
        p.stdin.flush()
        line = read_line(p, time.monotonic() + DEADLINE_S)
        if line and line.startswith("result "):
            out = {k: float(v) for k, v in (x.split("=") for x in line.split()[1:])}
    finally:
        p.stdin.close()
        p.kill()
        p.wait()
    for i in range(len(c.nodes)):
        c.start(i)
    c.leader(deadline_s=DEADLINE_S)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    os.environ["HALYARD_BIN"] = sys.argv[1]
    tool = sys.argv[2]
    trials = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    sec_trials = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    tmp = _Tmp(tempfile.mkdtemp(prefix="hy-failover-client-"))
    c = Cluster(tmp, 3)
    c.start_all()
    sec = None
    sec_res, sec_missing = [], 0
    res = {(k, w): [] for k in ("leader", "follower") for w in WRITERS}
    gaps = {key: [] for key in res}
    missing = {key: 0 for key in res}
    errs = {key: [0, 0] for key in res}
    try:
        for n in range(2 * trials):
            kind = ("leader", "follower")[n % 2]
            out = trial(c, tool, n, kind)
            cells = []
            for w in WRITERS:
                r = out[w]
                if r is None:
                    missing[(kind, w)] += 1
                    cells.append("%s none" % w)
                    continue
                res[(kind, w)].append(r["first_ack_ms"])
                gaps[(kind, w)].append(r["gap_ms"])
                errs[(kind, w)][0] += int(r["errors"])
                errs[(kind, w)][1] += int(r["unknown"])
                cells.append("%s %.1f" % (w, r["first_ack_ms"]))
            print("trial %d, %s killed: first ack after the kill (ms): %s"
                  % (n + 1, kind, ", ".join(cells)), flush=True)
        if sec_trials > 0:
            sec = Cluster(tmp, 1)
            sec.start_all()
            for n in range(sec_trials):
                r = secondary_trial(c, sec, tool, n)
                if r is None:
                    sec_missing += 1
                else:
                    sec_res.append(r["first_ack_ms"])
                print("secondary trial %d, every primary member killed: first ack on the "
                      "secondary after %s ms" % (n + 1, "none" if r is None else "%.0f" % r["first_ack_ms"]),
                      flush=True)
    finally:
        for e in c.stop_all() + (sec.stop_all() if sec is not None else []):
            print("stop: %s" % e[:200])
    print("\n%-9s %-17s %7s %9s %9s %9s %9s %9s %7s %8s"
          % ("killed", "writer", "trials", "p50 ms", "p99 ms", "worst ms", "gap p50", "gap p99",
             "errors", "unknown"))
    for (kind, w), v in res.items():
        if not v:
            print("%-9s %-17s %7d %9s" % (kind, w, 0, "none"))
            continue
        g = gaps[(kind, w)]
        print("%-9s %-17s %7d %9.1f %9.1f %9.1f %9.1f %9.1f %7d %8d%s"
              % (kind, w, len(v), statistics.median(v), percentile(v, 99), max(v), statistics.median(g),
                 percentile(g, 99), errs[(kind, w)][0],
                 errs[(kind, w)][1],
                 "  (%d without an ack in %d s)" % (missing[(kind, w)], DEADLINE_S) if missing[(kind, w)] else ""))
    if sec_res:
        print("%-9s %-17s %7d %9.1f %9.1f %9.1f%s"
              % ("primary", "libhalyard-failover", len(sec_res), statistics.median(sec_res),
                 percentile(sec_res, 99), max(sec_res),
                 "  (%d without an ack in %d s)" % (sec_missing, DEADLINE_S) if sec_missing else ""))
    print("(p50/p99/worst: from the SIGKILL to the writer's first acknowledged write after it, at "
          "least the time the kernel took to reap the process; gap: from the writer's last "
          "acknowledgement before the kill to that one)")


if __name__ == "__main__":
    main()

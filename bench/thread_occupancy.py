#!/usr/bin/env python3
"""Where each thread's time goes while a load runs (issue 17: what bounds the 3-node `-P 1`
SET throughput on this machine; docs/performance.md): for every thread of the servers and of
redis-benchmark, the share of the wall time it ran on a CPU, waited on a run queue (runnable,
no CPU given) and slept (the rest: in fdatasync, or waiting for input), from the kernel's
per-thread schedstat; with the whole machine's CPU split from /proc/stat. A halyard
cluster (leader first) and Redis `appendfsync always` run the same redis-benchmark load one
after the other, ROUNDS times, the order alternating; each row is the median over the rounds.

    bench/thread_occupancy.py /abs/path/to/halyard [--nodes 3] [--rounds 3] [--clients 50]
                              [--pipeline 1] [--seconds 4] [--port 22700] [--dir DIR]

The sample window is --seconds in the middle of a run long enough to cover it. Servers listen on
127.0.0.1 and are stopped by PID. Nothing here is a pass/fail test.
"""
import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ab_cluster", os.path.join(HERE, "ab_cluster.py"))
ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ab)
CPU_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]


def thread_times(pid):
    """{tid: (comm, ns on a CPU, ns on a run queue)}"""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            run, wait = (int(x) for x in open(base + "schedstat").read().split()[:2])
            out[tid] = (open(base + "comm").read().strip(), run, wait)
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return out


def cpu_split():
    return [int(x) for x in open("/proc/stat").readline().split()[1:9]]


def sample(target, args):
    """One run against target: per role and thread, the shares of the window; the CPU split."""
    n = 10 ** 7  # stopped once the window is over
    bench = subprocess.Popen(["redis-benchmark", "-p", str(target.port), "-t", "set", "-r", "100000",
                              "-c", str(args.clients), "-P", str(args.pipeline), "-n", str(n), "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # connected and under way
        pids = target.pids()
        roles = ["leader"] + ["follower"] * (len(pids) - 1) if len(pids) > 1 else ["server"]
        roles = list(zip(roles, pids)) + [("client", bench.pid)]
        c0, t0 = cpu_split(), time.monotonic()
        before = {pid: thread_times(pid) for _, pid in roles}
        req0 = int(ab.cli(target.port, "INFO", "stats").split("total_commands_processed:")[1].split()[0])
        time.sleep(args.seconds)
        req1 = int(ab.cli(target.port, "INFO", "stats").split("total_commands_processed:")[1].split()[0])
        after = {pid: thread_times(pid) for _, pid in roles}
        c1, t1 = cpu_split(), time.monotonic()
    finally:
        bench.kill()
        bench.wait()
    wall = (t1 - t0) * 1e9
    rows = {}
    for role, pid in roles:
        seen = {}
        for tid, (comm, run, wait) in after[pid].items():
            if tid not in before[pid]:
                continue
            _, run0, wait0 = before[pid][tid]
            on, queued = (run - run0) / wall, (wait - wait0) / wall
            shares = (on, queued, max(0.0, 1.0 - on - queued))
            if on + queued < 0.005:
                continue
            # the main thread first, then the others by name in order of appearance
            kind = "main" if tid == str(pid) else comm
            seen[kind] = seen.get(kind, 0) + 1
            label = "%s %s" % (role, kind if seen[kind] == 1 else "%s#%d" % (kind, seen[kind]))
            key = label
            k = 2
            while key in rows:
                key = "%s (%d)" % (label, k)
                k += 1
            rows[key] = shares
    total = sum(c1) - sum(c0)
    split = {f: (c1[i] - c0[i]) / total * os.cpu_count() for i, f in enumerate(CPU_FIELDS)}
    return rows, split, (req1 - req0 - 2) / (t1 - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--port", type=int, default=22700)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="occ.", dir=a.dir)
    targets = []
    try:
        targets.append(ab.Cluster("halyard", a.binary, "fsync", a.port, work, a.nodes))
        targets.append(ab.Redis("redis", "always", a.port + 90, work))
        res = {}
        print("thread_occupancy: SET -c %d -P %d, %d node(s) against Redis always, %s UTC, load %s"
              % (a.clients, a.pipeline, a.nodes, time.strftime("%H:%M", time.gmtime()),
                 open("/proc/loadavg").read().split()[0]), flush=True)
        for r in range(a.rounds):
            for t in (targets if r % 2 == 0 else targets[::-1]):
                rows, split, rate = sample(t, a)
                res.setdefault(t.name, []).append((rows, split, rate))
                print("round %d %-7s %8.0f SET/s" % (r + 1, t.name, rate), flush=True)
        for t in targets:
            runs = res[t.name]
            print("%s: %.0f SET/s (median of %d); share of the wall time, median over the rounds"
                  % (t.name, statistics.median(x[2] for x in runs), len(runs)))
            print("  %-28s %8s %10s %9s" % ("thread", "on CPU", "run queue", "asleep"))
            for label in runs[0][0]:
                v = [x[0][label] for x in runs if label in x[0]]
                print("  %-28s %7.1f%% %9.1f%% %8.1f%%" % (label, *(100 * statistics.median(s[i] for s in v)
                                                             for i in range(3))))
            print("  machine (%d CPUs, 100%% = one): %s" % (os.cpu_count(), ", ".join(
                "%s %.0f%%" % (f, 100 * statistics.median(x[1][f] for x in runs)) for f in CPU_FIELDS)))
    finally:
        ab.stop_procs([p for t in targets for p in t.procs])
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

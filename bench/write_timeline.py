#!/usr/bin/env python3
"""Where one client's SET spends its time on a 3-node cluster: a timeline of one write across the
three processes, from the kernel's own tracepoints (issue 17, docs/performance.md "One write's
timeline").

    bench/write_timeline.py /abs/path/to/halyard [--durability fsync|replicated] [-n 3000]
                            [--record-s 3] [--port 22300] [--data-dir DIR] [--keep DIR]

Starts three nodes on 127.0.0.1 (client ports PORT+1..3, peer ports PORT+10001..3, HTTP
PORT+21..23), waits for a leader, and runs `redis-benchmark -t set -c 1 -P 1` against it. While
it runs, `perf record` takes, for the three servers and the client, every system call's entry
and exit (raw_syscalls), every context switch and every wake-up (sched) for --record-s seconds.
The same machine's CLOCK_MONOTONIC orders the events of all four processes. With one client
and no pipelining the cluster is in lockstep: a cycle runs from one of the client's write()
calls to the next, and each cycle holds one SET. Every event of interest is named by who made
it (C the client; L the leader, F1 and F2 the followers; .loop the event loop's thread, .wal the
thread that makes the fdatasyncs) and what it was, and numbered by its occurrence in the
cycle; the report prints for each such event the median of its time from the cycle's start
(the client's write) over the cycles that have it, and in how many of them it occurs, sorted
by that median: the write's path hop by hop. `wake->run` lines say how long a thread woken by
another waited for a CPU. Needs perf with tracepoints (root, or kernel.perf_event_paranoid
<= 1 and tracefs readable). Servers are stopped by PID; every wait has a deadline.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab_cluster as ab  # noqa: E402

# x86_64 system call numbers of the calls the timeline follows.
SYSCALLS = {0: "read", 1: "write", 17: "pread64", 18: "pwrite64", 19: "readv", 20: "writev",
            44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 75: "fdatasync",
            74: "fsync", 202: "futex", 232: "epoll_wait", 281: "epoll_pwait", 24: "sched_yield",
            230: "clock_nanosleep", 228: "clock_gettime"}
SECRET = "write-timeline-secret-0123456789abcdef"


def sh(argv, timeout=30):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def role_of(port):
    out = sh(["redis-cli", "-p", str(port), "INFO", "replication"], timeout=5).stdout
    m = re.search(r"raft_role:(\w+)", out)
    return m.group(1) if m else None


def start(a, work):
    procs = []
    boot = ",".join("n%d@127.0.0.1:%d" % (i, a.port + 10000 + i) for i in (1, 2, 3))
    for i in (1, 2, 3):
        d = os.path.join(work, "n%d" % i)
        os.makedirs(d, exist_ok=True)
        argv = [a.binary, "--node-id", "n%d" % i, "--bind", "127.0.0.1", "--port",
                str(a.port + i), "--peer-port", str(a.port + 10000 + i), "--http-port",
                str(a.port + 20 + i), "--bootstrap", boot, "--cluster-secret", SECRET,
                "--data-dir", os.path.join(d, "data"), "--durability", a.durability,
                "--log-level", "warn"]
        log = open(os.path.join(d, "log"), "w")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for i in (1, 2, 3):
            if role_of(a.port + i) == "leader":
                return procs, i - 1
        time.sleep(0.1)
    raise SystemExit("write_timeline: no leader within 30 s")


def stop(procs):
    """By PID: SIGTERM, then SIGKILL after 15 s."""
    ab.stop_procs(procs)


LINE = re.compile(r"^\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+([\w:]+):\s*(.*)$")


def parse(script_out):
    """Yields (t_us, pid, tid, event, details) from `perf script`."""
    for line in script_out.splitlines():
        m = LINE.match(line)
        if m:
            yield (float(m.group(5)) * 1e6, int(m.group(2)), int(m.group(3)), m.group(6),
                   m.group(7))


def label_threads(events, names):
    """Names each thread: the loop (tid == pid), the WAL thread (most fdatasyncs), others."""
    syncs = collections.Counter()
    for t, pid, tid, ev, det in events:
        if ev == "raw_syscalls:sys_enter" and det.startswith("NR 75 "):
            syncs[(pid, tid)] += 1
    label = {}
    for pid, name in names.items():
        label[(pid, pid)] = name + ".loop" if name != "C" else "C"
        best = [k for k in syncs if k[0] == pid and k[1] != pid]
        if best:
            label[max(best, key=lambda k: syncs[k])] = name + ".wal"
    return label


def events_of(events, names, label, tid_pid):
    """The timeline's events: (t_us, who, what)."""
    out = []
    pending_wake = {}  # tid -> wake-up time
    for t, pid, tid, ev, det in events:
        if pid not in names and ev != "sched:sched_switch" and ev != "sched:sched_wakeup":
            continue
        if ev == "sched:sched_wakeup":
            m = re.search(r"pid=(\d+)", det)
            if m:
                pending_wake[int(m.group(1))] = t
            continue
        if ev == "sched:sched_switch":
            m = re.search(r"next_pid=(\d+)", det)
            if not m:
                continue
            nt = int(m.group(1))
            np = tid_pid.get(nt)
            who = label.get((np, nt)) if np is not None else None
            if who is None:
                continue
            w = pending_wake.pop(nt, None)
            if w is not None and t - w < 100000:
                out.append((w, who, "woken"))
                out.append((t, who, "runs (wake->run %.0f us)" % (t - w)))
            continue
        who = label.get((pid, tid), names.get(pid, "?") + ".t%d" % tid)
        m = re.match(r"NR (\d+) (.*)$", det)
        if not m:
            continue
        nr = int(m.group(1))
        name = SYSCALLS.get(nr)
        if name is None or name == "clock_gettime":
            continue
        if ev == "raw_syscalls:sys_enter":
            args = m.group(2)
            fd = re.match(r"\((\w+)", args)
            what = "%s(%s) enter" % (name, int(fd.group(1), 16) if fd and name not in (
                "futex", "sched_yield", "clock_nanosleep") else "")
            out.append((t, who, what))
        else:
            out.append((t, who, "%s exit %s" % (name, m.group(2).strip())))
    out.sort()
    return out


def timeline(evs, client_pid_label="C"):
    """Cycles from one client write() to the next; medians per (who, what, occurrence)."""
    starts = [i for i, (t, who, what) in enumerate(evs) if who == "C" and
              what.startswith(("write(", "sendto(")) and what.endswith("enter")]
    offs = collections.defaultdict(list)
    lengths = []
    for a, b in zip(starts, starts[1:]):
        t0 = evs[a][0]
        lengths.append(evs[b][0] - t0)
        seen = collections.Counter()
        for t, who, what in evs[a:b]:
            key = re.sub(r" = -?\d+$", "", what)
            key = re.sub(r"wake->run \d+ us", "wake->run", key)
            seen[(who, key)] += 1
            offs[(who, key, seen[(who, key)])].append((t - t0, what))
    n = len(lengths)
    return n, lengths, offs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--durability", default="fsync", choices=("fsync", "replicated"))
    ap.add_argument("-n", type=int, default=20000, help="SETs the client sends (it is stopped "
                    "after the recording anyway)")
    ap.add_argument("--record-s", type=float, default=3.0)
    ap.add_argument("--port", type=int, default=22300)
    ap.add_argument("--data-dir", default=None, help="where the nodes' data goes (a tmpfs "
                    "directory measures the chain without the disk)")
    ap.add_argument("--keep", default=None, help="keep perf.data and the script output here")
    ap.add_argument("--min-share", type=float, default=0.5,
                    help="print events present in at least this share of the cycles")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="write_timeline.", dir=a.data_dir)
    out_dir = a.keep or tempfile.mkdtemp(prefix="write_timeline_perf.")
    os.makedirs(out_dir, exist_ok=True)
    procs, leader = start(a, work)
    bench = None
    try:
        port = a.port + 1 + leader
        sh(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "1", "-n", "2000", "-r",
            "100000", "-q"], timeout=120)
        bench = subprocess.Popen(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "1",
                                  "-P", "1", "-n", str(a.n), "-r", "100000", "--csv"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5)
        names = {bench.pid: "C"}
        k = 1
        for i, p in enumerate(procs):
            if i == leader:
                names[p.pid] = "L"
            else:
                names[p.pid] = "F%d" % k
                k += 1
        data = os.path.join(out_dir, "perf.data")
        # System-wide, so that a switch from the idle task to a traced thread is seen; the
        # filters keep the traced threads' events only.
        tid_pid = {int(t): p for p in names for t in os.listdir("/proc/%d/task" % p)}
        tids = list(tid_pid)
        own = " || ".join("common_pid == %d" % t for t in tids)
        nxt = " || ".join("next_pid == %d" % t for t in tids)
        woken = " || ".join("pid == %d" % t for t in tids)
        rec = subprocess.run(
            ["timeout", "-s", "INT", str(a.record_s), "perf", "record", "-q", "-a", "-o", data,
             "-e", "raw_syscalls:sys_enter", "--filter", own, "-e", "raw_syscalls:sys_exit",
             "--filter", own, "-e", "sched:sched_switch", "--filter", nxt, "-e",
             "sched:sched_wakeup", "--filter", woken],
            capture_output=True, text=True, timeout=a.record_s + 60)
        if not os.path.exists(data):
            raise SystemExit("write_timeline: perf record failed: %s" % rec.stderr[-500:])
        script = sh(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                    timeout=600).stdout
        if a.keep:
            with open(os.path.join(out_dir, "script.txt"), "w") as f:
                f.write(script)
            with open(os.path.join(out_dir, "pids.txt"), "w") as f:
                f.write(" ".join("%s=%d" % (v, k) for k, v in names.items()) + "\n")
    finally:
        if bench is not None and bench.poll() is None:
            bench.send_signal(signal.SIGINT)
            try:
                bench.wait(timeout=10)
            except subprocess.TimeoutExpired:
                bench.kill()
        stop(procs)
        shutil.rmtree(work, ignore_errors=True)
        if not a.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    evs = list(parse(script))
    label = label_threads(evs, names)
    tl = events_of(evs, names, label, tid_pid)
    n, lengths, offs = timeline(tl)
    if n == 0:
        raise SystemExit("write_timeline: no cycle recorded")
    print("write_timeline: %s, 3 nodes, -c 1 -P 1, %d cycles in %.1f s, %s, load %s" % (
        a.durability, n, a.record_s, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        open("/proc/loadavg").read().split()[0]))
    print("cycle (client write to next client write) p50 %.0f us, p90 %.0f us" % (
        statistics.median(lengths), sorted(lengths)[int(len(lengths) * 0.9)]))
    rows = []
    for (who, key, occ), v in offs.items():
        if len(v) >= a.min_share * n:
            rows.append((statistics.median(x for x, _ in v), who, key, occ, len(v)))
    rows.sort()
    print("%9s  %-8s %-44s %s" % ("median us", "who", "event", "share of cycles"))
    for med, who, key, occ, cnt in rows:
        print("%9.0f  %-8s %-44s %3.0f%%" % (med, who, key + (" #%d" % occ if occ > 1 else ""),
                                            100.0 * cnt / n))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What one SET costs the servers, counted: the profile behind row (e) of bench-partitions
("no tax for partitions", docs/partitioning.md "Where a SET's CPU goes").

    bench/set_profile.py /abs/path/to/halyard --parts 16 [--nodes 3] [-P 16] [-n 100000]
                         [-r 100000] [--wrap none|callgrind|strace|strace-raw|perf] [--cache-sim]
                         [--port 23100]
                         [--out DIR] [--via-n1 | --via-follower]

Starts --nodes nodes (1 or 3, RF = nodes) on 127.0.0.1 with --parts partitions, waits until
every partition is led and leaderships are balanced, then runs redis-benchmark -t set -c 50
-r R -n N -P P: with partitions on 3 nodes through --cluster (every key to its leader; note
that redis-benchmark gives each master one hash tag, so -r R there draws from masters x R
keys: pass 3 x R to the other runs to write the same keys), otherwise to the leader of
partition 0. Printed per SET, summed over the servers: CPU time (user + system, /proc), and
from each node's /metrics the Raft proposals, peer frames received, WAL fdatasyncs and loop
turns; DBSIZE at the end. With --wrap callgrind every server runs under valgrind's callgrind
with its instrumentation off until the cluster is led and on during the benchmark only
(callgrind_control), so the files in --out hold the instructions of the SETs alone
(callgrind_annotate them; the servers' timers and cron run ~50x more often per SET there);
with --wrap strace each server is traced (strace -c -f, attached for the benchmark only) and
its system calls per SET are printed; with --wrap strace-raw every call of every thread is
traced (strace -f) and counted per thread (the event loop, the others) and per kind of fd (the
WAL's files, eventfds, sockets: "?" for the clients' connections, opened after the look at
the fds), with the bytes the reads and writes carried; with --wrap perf, perf record -g of the
servers goes to --out/perf.data; --cache-sim adds callgrind's cache simulation. Printed
always: CPU time split into user and system, and the context switches of every thread. Servers are stopped by PID; every wait has a deadline. Under a wrap the
servers run slower, so their turns batch more writes than unwrapped: compare runs of the
same wrap only. Ports: peer ports from --port (client ports 10,000 below, HTTP 200 above).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import partitions as pb  # noqa: E402

# Under callgrind every timer fires late: long enough timeouts that nothing fails over.
SLOW_ARGS = ["--election-timeout-ms", "20000", "--heartbeat-ms", "2000", "--peer-ping-timeout-ms",
             "60000", "--gossip", "no", "--request-timeout-ms", "120000"]


class Nodes(pb.Cluster):
    """bench/partitions.py's cluster on fixed ports, of 1 or 3 nodes, optionally under callgrind."""

    NAME = "set_profile"

    def __init__(self, args, work):
        self.a, self.bin, self.parts, self.extra, self.dir = args, args.binary, args.parts, [], work
        # A member's client port is its peer port less 10,000 (docs/operations.md).
        self.peer_ports = [args.port + i for i in range(args.nodes)]
        self.ports = [p - 10000 for p in self.peer_ports]
        self.boot = ",".join("n%d@127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(self.peer_ports))
        self.procs = [None] * args.nodes
        for i in range(args.nodes):
            self.start(i)

    def argv(self, i):
        a = self.a
        argv = [a.binary, "--node-id", "n%d" % (i + 1), "--bind", "127.0.0.1", "--port",
                str(self.ports[i]), "--http-port", str(self.peer_ports[i] + 200), "--data-dir",
                os.path.join(self.dir, "n%d" % (i + 1)), "--partitions", str(a.parts),
                "--log-level", "warn"]
        if a.nodes > 1:
            argv += ["--peer-port", str(self.peer_ports[i]), "--bootstrap", self.boot,
                     "--cluster-secret", "bench"]
        if a.wrap == "callgrind":
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"] + (
                ["--cache-sim=yes"] if a.cache_sim else []) + [
                    "--callgrind-out-file=%s/callgrind.n%d.%%p" % (a.out, i + 1)] + argv + SLOW_ARGS
        return argv

    def metrics(self, i):
        """The counters of /metrics this profile reads, summed over their labels."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (self.peer_ports[i] + 200),
                                    timeout=30) as r:
            text = r.read().decode(errors="replace")
        out = {}
        for line in text.splitlines():
            m = re.match(r"(halyard_peer_frames_received_total|halyard_wal_fsync_duration_seconds_count|"
                         r"halyard_loop_turn_duration_seconds_count|halyard_raft_proposals_total|"
                         r"halyard_commands_processed_total|halyard_snapshots_total)(\{[^}]*\})? ([0-9.e+]+)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
        return out

    def counters(self):
        tot = {}
        for i in range(self.a.nodes):
            for k, v in self.metrics(i).items():
                tot[k] = tot.get(k, 0) + v
        tot["cpu_ticks"] = sum(pb.proc_ticks(p.pid) for p in self.procs)
        for p in self.procs:
            for k, v in proc_split(p.pid).items():
                tot[k] = tot.get(k, 0) + v
        return tot


def proc_split(pid):
    """User and system ticks (with reaped children's) and the context switches of every thread
    of process pid (/proc): where the CPU time goes besides the instructions callgrind counts."""
    out = {"user_ticks": 0, "sys_ticks": 0, "ctxsw_voluntary": 0, "ctxsw_involuntary": 0}
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    out["user_ticks"] = int(fields[11]) + int(fields[13])
    out["sys_ticks"] = int(fields[12]) + int(fields[14])
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out["ctxsw_voluntary"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        out["ctxsw_involuntary"] += int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return out


def fd_kinds(pid):
    """{fd: "wal" | "eventfd" | "socket" | "other"} of process pid (its open files now)."""
    out = {}
    base = "/proc/%d/fd" % pid
    for fd in os.listdir(base):
        try:
            target = os.readlink(os.path.join(base, fd))
        except OSError:
            continue
        if "/wal/" in target:
            out[int(fd)] = "wal"
        elif "eventfd" in target:
            out[int(fd)] = "eventfd"
        elif target.startswith("socket:"):
            out[int(fd)] = "socket"
        else:
            out[int(fd)] = "other"
    return out


TRACE_CALL = re.compile(r"^(\d+)\s+(\w+)\((\d*)")
TRACE_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>")
TRACE_RET = re.compile(r"\)\s+=\s+(-?\d+)")
BYTE_CALLS = ("write", "writev", "read", "readv", "pwrite64", "pwritev", "sendmsg", "recvfrom",
              "sendto")


def trace_report(path, kinds, main_tid, n):
    """Counts of a raw `strace -f` file per thread (the event loop, the others together) and
    per system call, with the bytes the writes and reads carried per kind of fd (wal, eventfd,
    socket), per SET. A call another thread interrupted is counted once, its bytes read from
    its "resumed" line."""
    calls, nbytes, open_calls = {}, {}, {}

    def ret(key, line):
        r = TRACE_RET.search(line)
        if r and key[2] and int(r.group(1)) > 0:
            nbytes[key] = nbytes.get(key, 0) + int(r.group(1))

    with open(path, errors="replace") as f:
        for line in f:
            m = TRACE_RESUMED.match(line)
            if m:
                key = open_calls.pop(int(m.group(1)), None)
                if key is not None:
                    ret(key, line)
                continue
            m = TRACE_CALL.match(line)
            if not m:
                continue
            tid, name, fd = int(m.group(1)), m.group(2), m.group(3)
            kind = kinds.get(int(fd), "?") if fd and name in BYTE_CALLS else ""
            key = ("loop" if tid == main_tid else "other", name, kind)
            calls[key] = calls.get(key, 0) + 1
            if "<unfinished ...>" in line:
                open_calls[tid] = key
            else:
                ret(key, line)
    for key in sorted(calls, key=lambda k: -calls[k]):
        extra = "  %.1f bytes/SET" % (nbytes[key] / n) if key in nbytes else ""
        print("    %-5s %-16s %-8s %9d  %.4f per SET%s" % (key[0], key[1], key[2], calls[key],
                                                         calls[key] / n, extra))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--parts", type=int, default=16)
    ap.add_argument("--nodes", type=int, default=3, choices=(1, 3))
    ap.add_argument("-P", type=int, default=16)
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("-r", type=int, default=100000)
    ap.add_argument("--wrap", default="none", choices=("none", "callgrind", "strace", "strace-raw", "perf"))
    ap.add_argument("--port", type=int, default=23100)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cache-sim", action="store_true",
                    help="with --wrap callgrind: simulate the caches too (--cache-sim=yes)")
    ap.add_argument("--via-n1", action="store_true",
                    help="send every SET to n1 without --cluster (it proxies what it does not lead)")
    ap.add_argument("--via-follower", action="store_true",
                    help="send every SET to a node that does not lead partition 0, without "
                         "--cluster (with --parts 1: every SET is proxied to the one leader)")
    a = ap.parse_args()
    # Client ports sit 10,000 below the peer ports and HTTP 200 above: keep all of them out of
    # the privileged ports and below Linux's ephemeral range (32768 up), where a client's
    # outgoing connection could already hold one.
    if not 11024 <= a.port <= 32767 - 200 - a.nodes:
        ap.error("--port must be within 11024..%d (client ports are --port - 10000, HTTP "
                 "--port + 200, all below the ephemeral range)" % (32767 - 200 - a.nodes))
    a.out = os.path.abspath(a.out or tempfile.mkdtemp(prefix="set_profile."))
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="set_profile_data.")
    c = Nodes(a, work)
    tracers = []
    try:
        slow = a.wrap == "callgrind"
        led = c.wait_led(list(range(a.nodes)), 600 if slow else 90)
        if a.via_n1:
            target = ["-p", str(c.ports[0])]
        elif a.via_follower and a.nodes > 1:
            target = ["-p", str(c.ports[(led[0] + 1) % a.nodes])]
        elif a.nodes > 1 and a.parts > 1:
            target = ["--cluster", "-p", str(c.ports[0])]
        else:
            target = ["-p", str(c.ports[led[0]])]
        # A short warm-up (connections, forwarding sessions, woken groups), then the counts.
        subprocess.run(["redis-benchmark", "-h", "127.0.0.1"] + target + [
            "-t", "set", "-c", "50", "-r", str(a.r), "-n", "2000", "-P", str(a.P), "-q"],
                       capture_output=True, timeout=1200)
        if slow:
            for p in c.procs:
                subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, timeout=120)
                subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True, timeout=120)
        if a.wrap == "strace":
            for i, p in enumerate(c.procs):
                tracers.append(subprocess.Popen(
                    ["strace", "-c", "-f", "-p", str(p.pid), "-o", "%s/strace.n%d" % (a.out, i + 1)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)  # strace attaches to every thread
        if a.wrap == "strace-raw":
            kinds = [fd_kinds(p.pid) for p in c.procs]
            for i, p in enumerate(c.procs):
                tracers.append(subprocess.Popen(
                    ["strace", "-f", "-qq", "-s", "0", "-o", "%s/trace.n%d" % (a.out, i + 1), "-p",
                     str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        if a.wrap == "perf":
            tracers.append(subprocess.Popen(
                ["perf", "record", "-F", "1999", "-g", "-o", "%s/perf.data" % a.out, "-p",
                 ",".join(str(p.pid) for p in c.procs)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        before = c.counters()
        t0 = time.monotonic()
        out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1"] + target + [
            "-t", "set", "-c", "50", "-r", str(a.r), "-n", str(a.n), "-P", str(a.P), "--csv"],
                             capture_output=True, text=True, timeout=3600)
        wall = time.monotonic() - t0
        time.sleep(1.5)  # /metrics is published by the nodes' cron (within a second of a change)
        after = c.counters()
        if slow:
            for p in c.procs:
                subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, timeout=300)
                subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True, timeout=120)
        for t in tracers:
            t.send_signal(signal.SIGINT)
            t.wait(timeout=60)
        if out.stderr.strip():
            print("redis-benchmark: %s" % out.stderr.strip()[-300:])
        d = {k: after[k] - before.get(k, 0) for k in after}
        n = a.n
        print("parts %d nodes %d -P %d n %d wrap %s: %.0f SET/s (wall %.1f s)" % (
            a.parts, a.nodes, a.P, n, a.wrap, n / wall, wall))
        print("  CPU us/SET %.2f (user %.2f, system %.2f)" % (
            d["cpu_ticks"] * 1e6 / pb.HZ / n, d["user_ticks"] * 1e6 / pb.HZ / n,
            d["sys_ticks"] * 1e6 / pb.HZ / n))
        print("  keys at the end (DBSIZE) %s" % pb.cmd(c.ports[0], "DBSIZE", timeout=30).decode().strip())
        for k in sorted(d):
            if k not in ("cpu_ticks", "user_ticks", "sys_ticks"):
                print("  %-44s %10d  %.4f per SET" % (k, d[k], d[k] / n))
        if a.wrap == "strace":
            for i in range(a.nodes):
                print("  strace n%d:" % (i + 1))
                with open("%s/strace.n%d" % (a.out, i + 1)) as f:
                    for line in f:
                        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
                        if m and m.group(2) in ("write", "writev", "fdatasync", "fsync", "sendmsg",
                                                "epoll_wait", "read", "readv", "futex", "pwrite64",
                                                "recvfrom", "sendto"):
                            print("    %-12s %8s  %.4f per SET" % (m.group(2), m.group(1), int(m.group(1)) / n))
        if a.wrap == "strace-raw":
            for i, p in enumerate(c.procs):
                print("  system calls of n%d (loop: the event loop thread; other: the WAL thread "
                      "and the rest):" % (i + 1))
                kinds[i].update({k: v for k, v in fd_kinds(p.pid).items() if k not in kinds[i]})
                trace_report("%s/trace.n%d" % (a.out, i + 1), kinds[i], p.pid, n)
        if slow:
            print("  callgrind files in %s" % a.out)
    finally:
        for t in tracers:
            if t.poll() is None:
                t.kill()
        c.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

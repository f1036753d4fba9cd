#!/usr/bin/env python3
"""`make bench-partitions`, and rows (d)-(f) of `make bench-cluster`: what partitions cost and
buy (issue 11 "Benchmarks"), side by side in one run. Nothing here is a pass/fail test; every
row prints its figure and its target, and the summary says plainly when a target is missed.

    bench/partitions.py /abs/path/to/halyard [--summary FILE]

(b) One client's latency, bench-cluster's row (b) with partitions (issue 11 asked for rows
    (a)-(c) with the default partitions beside the 1-partition figure: (e) is (a) so, (f) is
    (c)): redis-benchmark -t set -c 1 -P 1 -n BENCH_LAT_N (default 20,000), p50 and p99 from
    its --csv, PARTS partitions through --cluster (each key to its leader) against 1 partition
    through its leader, a fresh cluster per count per round, BENCH_ROUNDS rounds, the order
    alternating; medians. Information (bench-cluster's own (b) has the target).

(d) Idle cost: a 3-node cluster with each count of BENCH_IDLE_PARTS (default 1 and 1,024, the
    most allowed) and no traffic. Once every partition has a leader and leaderships are
    balanced, it waits BENCH_IDLE_SETTLE_S more (default 5: the balancer's last moves, then
    quiescing), then reads each node's CPU (user + system, /proc/PID/stat) over BENCH_IDLE_S
    seconds (default 20) as % of one core, and its RSS (VmRSS) at the end. BENCH_IDLE_RUNS
    fresh clusters per count (default 2); medians. Target: <= 2% of a core per node.
(e) No tax for partitions: SET throughput and server CPU time per SET of a 3-node cluster with
    BENCH_PARTS partitions (default 16, the count `make run` creates; the server's own default
    is 1) against the same cluster with 1, redis-benchmark -t set -c 50 (-r below) at -P 1 and
    -P 16. With BENCH_PARTS, two ways: `--cluster` (redis-benchmark routes every key to its
    partition's leader, so all three nodes lead) and through one node (like rows (a)-(c):
    node n1, which proxies the keys of the partitions it does not lead to their leaders). With
    1 partition, through its leader (the same requests: redis-benchmark --cluster refuses a
    cluster of one master). A fresh cluster per partition count per round, BENCH_ROUNDS rounds
    (default 3), the order alternating; medians. CPU is user + system of the three server
    processes and their reaped children (snapshot encoders), from /proc, per SET. Target:
    throughput with partitions >= 0.9x the 1-partition figure, at -P 1 and -P 16.
    Requests: BENCH_E_N (default 400000) at -P 1 and BENCH_E_N_PIPE (default 3000000) at -P 16,
    to the leader and with --cluster; through n1, BENCH_N and BENCH_N_PIPE. redis-benchmark
    --cluster times its runs on a 250 ms grid (its throughput tick, as the figures show): a run of
    1.3 s (the 400,000 SETs at -P 16 of before) came out at 1.25 s or 1.50 s (319,489 or 265,781
    SET/s, nothing between), up to a fifth below its rate, where the 1-partition run, without
    --cluster, is timed to the millisecond. Runs of about 10 s make the tick a few per cent.
    The same keys in every run: redis-benchmark --cluster names its keys key:{TAG}:NNNNNNNNNNNN
    with one hash tag per master (one slot, so one partition, per leader), so -r 100000 there
    draws from 3 x 100,000 keys; the runs without --cluster draw from -r 300000 (E_KEYS times
    the masters), the same count. Before 2026-12-06 every run had -r 100000, and the 16-partition
    --cluster runs wrote twice the distinct keys of the 1-partition runs (~204,000 against
    ~98,000 after 400,000 SETs: more inserts, larger tables, earlier snapshots): two different
    workloads (docs/partitioning.md "Where a SET's CPU goes").
(f) A node fails: a 3-node cluster with 1 and with BENCH_PARTS partitions,
    BENCH_FAILOVER_ROUNDS rounds (default 10) each, per signal of BENCH_FAILOVER_SIGNALS
    (default "kill,stop": kill -9, then SIGSTOP). Each round waits until every partition has a
    leader and leaderships are balanced (a node restarted, or resumed, in the previous round
    has its share back through the balancer's transfers), then BENCH_SETTLE_S (default 1: idle
    partitions have quiesced, so failover goes through the node-level failure detection), then
    signals a node (node round % 3, which leads a third of the partitions; with 1 partition,
    its leader). For every partition it led, a prober opens a new connection to a survivor
    (alternating between the two) every 10 ms and sends `SET` of a key of that partition,
    without waiting for earlier attempts (1 s timeout each); the partition's time is the
    earliest acknowledgement after the signal. p50 and p99 (nearest rank) over every partition
    of every round. The node is restarted (kill) or resumed (stop) after the round. Each round
    also prints the survivors' loop-lag grace before the signal (INFO cluster
    gossip_lag_grace_ms: on a loaded host it delays the detection of a stopped node, up to
    gossip-lag-grace-max-ms; BENCH_FAILOVER_MAX_GRACE_MS=N first waits, up to 90 s, until it
    is at most N ms, so that a round measures a node that hangs in a cluster that has not just
    seen one hang). Target: p99 <= 1 s, as the single-group failover.

Everything listens on 127.0.0.1, lives in one temporary directory (removed at the end) and is
stopped by PID; every wait has a deadline. The machine it ran on may be shared: the rates
(throughput, CPU %) move with whatever else runs, hence medians and same-run ratios.
"""

import argparse
import json
import math
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from cluster import free_port_pair  # noqa: E402

PARTS = int(os.environ.get("BENCH_PARTS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_N", "100000"))
E_KEYS = int(os.environ.get("BENCH_E_KEYS", "100000"))  # (e)'s -r with --cluster (per master)
N_PIPE = int(os.environ.get("BENCH_N_PIPE", "400000"))
E_N = int(os.environ.get("BENCH_E_N", "400000"))  # (e) to the leader and --cluster, -P 1
E_N_PIPE = int(os.environ.get("BENCH_E_N_PIPE", "3000000"))  # and -P 16
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "20"))
IDLE_SETTLE_S = float(os.environ.get("BENCH_IDLE_SETTLE_S", "5"))
IDLE_RUNS = int(os.environ.get("BENCH_IDLE_RUNS", "2"))
IDLE_PARTS = [int(x) for x in os.environ.get("BENCH_IDLE_PARTS", "1,1024").split(",")]
FAILOVER_ROUNDS = int(os.environ.get("BENCH_FAILOVER_ROUNDS", "10"))
FAILOVER_SIGNALS = os.environ.get("BENCH_FAILOVER_SIGNALS", "kill,stop").split(",")
# With it, each round first waits (at most 90 s) until both survivors' loop-lag grace is at
# most this many ms: a stopped node resumed while still suspected teaches its silence to the
# others for gossip-lag-window-ms (30 s), which would delay the next round's detection.
MAX_GRACE_MS = int(os.environ["BENCH_FAILOVER_MAX_GRACE_MS"]) if os.environ.get(
    "BENCH_FAILOVER_MAX_GRACE_MS") else None
ONLY = os.environ.get("BENCH_ONLY", "b,e,d,f").split(",")  # which of the parts to run (b, d, e, f)
LAT_N = int(os.environ.get("BENCH_LAT_N", "20000"))
EXTRA = os.environ.get("BENCH_SERVER_ARGS", "").split()  # e.g. "--quiesce-ticks 0" for "before"
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "1"))
IDLE_TARGET_PCT = 2.0
TAX_TARGET = 0.9
FAILOVER_TARGET_MS = 1000.0
PROBE_INTERVAL_S = 0.010
PROBE_TIMEOUT_S = 1.0
PROBE_DEADLINE_S = 30.0
SLOTS = 16384
HZ = os.sysconf("SC_CLK_TCK")
SUMMARY = []  # the summary's lines, printed at the end (and written to --summary FILE)


def say(line=""):
    print(line, flush=True)


def resp(*args):
    return b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x for x in args))


def cmd(port, *args, timeout=5.0):
    """One RESP command on a fresh connection; returns the raw reply bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp(*args))
        data = b""
        while not data.endswith(b"\r\n") or (data[:1] in b"$*=" and not complete(data)):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def complete(data):
    """Whether a bulk or verbatim reply is all there (enough for what this script reads)."""
    if data[:1] in b"$=":
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:])
        return n < 0 or len(rest) >= n + 2
    return data.endswith(b"\r\n")


def events(port, timeout=5.0):
    """HALYARD EVENTS of one node: its recorded events (JSON text), oldest first."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp("HALYARD", "EVENTS", "COUNT", "1024"))
        f = s.makefile("rb")
        head = f.readline()
        if not head.startswith(b"*"):
            return []
        out = []
        for _ in range(int(head[1:])):
            n = int(f.readline()[1:])
            out.append(f.read(n + 2)[:-2].decode(errors="replace"))
        return out


def info_field(port, section, name):
    """One field of INFO <section> as text ("?" if the node did not say)."""
    try:
        for line in cmd(port, "INFO", section).decode(errors="replace").splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def proc_ticks(pid):
    """utime + stime + cutime + cstime of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Cluster:
    """Three bootstrapped nodes on 127.0.0.1 (bench/move.py adds a joiner through argv)."""

    NAME = "bench-partitions"  # how errors name the benchmark

    def __init__(self, binary, workdir, parts, extra=()):
        self.bin, self.parts = binary, parts
        self.extra = EXTRA + list(extra)
        self.dir = tempfile.mkdtemp(dir=workdir)
        self.ports = []
        while len(self.ports) < 3:
            p = free_port_pair()
            if all(abs(p - q) not in (0, 1000, 10000) for q in self.ports):
                self.ports.append(p)
        self.boot = ",".join("n%d@127.0.0.1:%d" % (i + 1, p + 10000) for i, p in enumerate(self.ports))
        self.procs = [None] * 3
        for i in range(3):
            self.start(i)

    def argv(self, i):
        p = self.ports[i]
        return [self.bin, "--node-id", "n%d" % (i + 1), "--bind", "127.0.0.1", "--port", str(p),
                "--peer-port", str(p + 10000), "--http-port", "0", "--data-dir",
                os.path.join(self.dir, "n%d" % (i + 1)), "--bootstrap", self.boot, "--cluster-secret", "bench",
                "--partitions", str(self.parts), "--log-level", "warn"] + self.extra

    def start(self, i):
        log = open(os.path.join(self.dir, "n%d.log" % (i + 1)), "a")
        self.procs[i] = subprocess.Popen(self.argv(i), stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def check_alive(self):
        for i, pr in enumerate(self.procs):
            if pr.poll() is not None:
                raise SystemExit("%s: node n%d exited (status %s); its log is %s" % (
                    self.NAME, i + 1, pr.returncode, os.path.join(self.dir, "n%d.log" % (i + 1))))

    def leaders(self, via):
        """{partition: index of its leader} from CLUSTER NODES on node `via`."""
        text = cmd(self.ports[via], "CLUSTER", "NODES").decode(errors="replace")
        out = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) < 8 or "master" not in f[2]:
                continue
            port = int(f[1].split("@")[0].split(":")[1])
            for r in f[8:]:
                lo = int(r.split("-")[0])
                out[lo * self.parts // SLOTS] = self.ports.index(port)
        return out

    def wait_led(self, live, deadline_s=60):
        """Waits until every partition has a leader among `live`, as every live node sees it,
        and each live node leads floor or ceil of its share; returns {partition: leader}."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            self.check_alive()
            try:
                views = [self.leaders(i) for i in live]
                led = views[0]
                counts = [sum(1 for v in led.values() if v == i) for i in live]
                if all(v == led for v in views) and len(led) == self.parts and \
                        set(led.values()) <= set(live) and max(counts) - min(counts) <= 1:
                    return led
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise SystemExit("%s: %d partitions not all led and balanced within %d s" % (
            self.NAME, self.parts, deadline_s))

    def cpu_ticks(self):
        return sum(proc_ticks(pr.pid) for pr in self.procs)

    def stop(self):
        for pr in self.procs:
            if pr is not None and pr.poll() is None:
                pr.send_signal(signal.SIGCONT)  # a node left stopped would ignore SIGTERM
                pr.send_signal(signal.SIGTERM)
        for pr in self.procs:
            if pr is not None:
                try:
                    pr.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()


def med(xs):
    return statistics.median(xs) if xs else None


def nearest_rank(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def verdict(ok):
    return "met" if ok else "MISSED"


# ---- (e) ---------------------------------------------------------------------------------------

def bench_set(c, mode, pipeline, n):
    """(requests per second, server CPU µs per SET) of one redis-benchmark run, or None."""
    if mode == "cluster":
        target = ["--cluster", "-p", str(c.ports[0])]
    elif mode == "leader":
        target = ["-p", str(c.ports[c.leaders(0)[0]])]
    else:  # "node": through n1, whatever it leads
        target = ["-p", str(c.ports[0])]
    try:
        seen = max([json.loads(e).get("id", 0) for e in events(c.ports[0])] or [0])
    except (OSError, ValueError):
        seen = 0
    t0 = c.cpu_ticks()
    # One hash tag per master with --cluster: the other modes draw from as many keys.
    keys = E_KEYS if mode == "cluster" else E_KEYS * len(c.ports)
    try:
        out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1"] + target + [
            "-t", "set", "-c", "50", "-r", str(keys), "-n", str(n), "-P", str(pipeline), "--csv"],
                             capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        say("    (a run of %s -P %d FAILED: out of time)" % (mode, pipeline))
        return None
    cpu_s = (c.cpu_ticks() - t0) / HZ
    rps = None
    for line in out.stdout.splitlines():
        if line.startswith('"SET"'):
            rps = float(line.split(",")[1].strip('"'))
    if rps is None or out.stderr.strip():
        say("    (a run of %s -P %d FAILED: %s)" % (mode, pipeline, (out.stderr or out.stdout).strip()[-200:]))
        # What n1 saw meanwhile (a leadership change answers a write UNKNOWN or TRYAGAIN, and
        # redis-benchmark stops at the first error): suspicions, elections (its own log of at
        # most 1,024 events; the first few are shown).
        try:
            new = [e for e in events(c.ports[0]) if json.loads(e).get("id", 0) > seen and
                   ("LEADER_CHANGED" in e or "MEMBER_" in e)]
            for e in new[:6]:
                say("      n1 event: %s" % e)
            if len(new) > 6:
                say("      n1: %d more such events" % (len(new) - 6))
        except (OSError, ValueError):
            pass
        return None
    return rps, cpu_s * 1e6 / n


def part_e(binary, work):
    say("(e) SET, 3 nodes, redis-benchmark -t set -c 50 -r %d (--cluster: per master) or -r %d, -n %d at -P 1, "
        "-n %d at -P 16 (through n1: %d, %d); %d rounds, 1 and %d partitions alternating" % (
            E_KEYS, 3 * E_KEYS, E_N, E_N_PIPE, N, N_PIPE, ROUNDS, PARTS))
    rows = {}  # (parts, mode, pipe) -> [(rps, us per SET)]
    attempted = {}
    configs = {1: ["leader"], PARTS: ["cluster", "node"]}
    for r in range(ROUNDS):
        order = [1, PARTS] if r % 2 == 0 else [PARTS, 1]
        for parts in order:
            c = Cluster(binary, work, parts)
            try:
                c.wait_led([0, 1, 2])
                for pipe in (1, 16):
                    for mode in configs[parts]:
                        if mode == "node":
                            n = N if pipe == 1 else N_PIPE
                        else:
                            n = E_N if pipe == 1 else E_N_PIPE
                        key = (parts, mode, pipe)
                        attempted[key] = attempted.get(key, 0) + 1
                        c.wait_led([0, 1, 2])  # a failed run may have moved leaderships
                        got = bench_set(c, mode, pipe, n)
                        c.check_alive()
                        if got is not None:
                            rows.setdefault(key, []).append(got)
                            say("    round %d: %4d partition(s) %-7s -P %-2d %9.0f SET/s %7.1f us CPU/SET" % (
                                r + 1, parts, mode, pipe, got[0], got[1]))
            finally:
                c.stop()
    names = {"leader": "to the leader", "cluster": "--cluster", "node": "through n1"}
    say("    %-10s %-14s %-4s %20s %16s" % ("partitions", "sent", "-P", "SET/s", "CPU us/SET"))
    for pipe in (1, 16):
        for parts in (1, PARTS):
            for mode in configs[parts]:
                key = (parts, mode, pipe)
                xs = rows.get(key, [])
                rps, us = med([x[0] for x in xs]), med([x[1] for x in xs])
                say("    %-10d %-14s %-4d %20s %16s" % (
                    parts, names[mode], pipe,
                    "%.0f (%d/%d)" % (rps, len(xs), attempted.get(key, 0)) if xs else "failed",
                    "%.1f" % us if xs else "-"))
    for pipe in (1, 16):
        one = rows.get((1, "leader", pipe), [])
        for mode in configs[PARTS]:
            many = rows.get((PARTS, mode, pipe), [])
            if not one or not many:
                SUMMARY.append("(e) -P %-2d %d partitions %s / 1 partition: FAILED (no completed run)" % (
                    pipe, PARTS, names[mode]))
                continue
            tput = med([x[0] for x in many]) / med([x[0] for x in one])
            cpu = med([x[1] for x in many]) / med([x[1] for x in one])
            SUMMARY.append("(e) -P %-2d %d partitions %-10s / 1 partition: throughput %.2fx, CPU per SET %.2fx"
                           "  (target throughput >= %.1fx%s)" % (
                               pipe, PARTS, names[mode], tput, cpu, TAX_TARGET,
                               ": " + verdict(tput >= TAX_TARGET) if mode == "cluster" else
                               "; informative: 2/3 of the keys proxied"))


# ---- (b) ---------------------------------------------------------------------------------------

def bench_latency(c, mode, n):
    """(p50, p99) in microseconds of one `redis-benchmark -c 1 -P 1` SET run, or None."""
    target = ["--cluster", "-p", str(c.ports[0])] if mode == "cluster" else \
        ["-p", str(c.ports[c.leaders(0)[0]])]
    try:
        out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1"] + target + [
            "-t", "set", "-c", "1", "-r", "100000", "-n", str(n), "-P", "1", "--csv"],
                             capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        say("    (a run of %s -c 1 FAILED: out of time)" % mode)
        return None
    for line in out.stdout.splitlines():
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
        # "p99_latency_ms","max_latency_ms"
        if line.startswith('"SET"') and not out.stderr.strip():
            f = [x.strip('"') for x in line.split(",")]
            return float(f[4]) * 1000, float(f[6]) * 1000
    say("    (a run of %s -c 1 FAILED: %s)" % (mode, (out.stderr or out.stdout).strip()[-200:]))
    return None


def part_b(binary, work):
    """Row (b) of bench-cluster with partitions: one client's SET latency, PARTS partitions
    (every key to its leader, --cluster) against 1 (to its leader), side by side."""
    say("(b) SET latency, 3 nodes, redis-benchmark -t set -c 1 -P 1 -n %d; %d rounds, 1 and %d "
        "partitions alternating" % (LAT_N, ROUNDS, PARTS))
    rows = {}
    for r in range(ROUNDS):
        for parts in ([1, PARTS] if r % 2 == 0 else [PARTS, 1]):
            mode = "leader" if parts == 1 else "cluster"
            c = Cluster(binary, work, parts)
            try:
                c.wait_led([0, 1, 2])
                got = bench_latency(c, mode, LAT_N)
                c.check_alive()
                if got is not None:
                    rows.setdefault(parts, []).append(got)
                    say("    round %d: %4d partition(s) %-7s p50 %6.0f us  p99 %6.0f us" % (
                        r + 1, parts, mode, got[0], got[1]))
            finally:
                c.stop()
    one, many = rows.get(1, []), rows.get(PARTS, [])
    if not one or not many:
        SUMMARY.append("(b) -c 1 SET latency, %d partitions / 1: FAILED (no completed run)" % PARTS)
        return
    p50s = (med([x[0] for x in one]), med([x[0] for x in many]))
    p99s = (med([x[1] for x in one]), med([x[1] for x in many]))
    SUMMARY.append("(b) -c 1 SET latency, 1 partition / %d partitions --cluster: p50 %.0f / %.0f us "
                   "(%.2fx), p99 %.0f / %.0f us (%.2fx)  (medians of %d/%d runs; information)" % (
                       PARTS, p50s[0], p50s[1], p50s[1] / p50s[0], p99s[0], p99s[1],
                       p99s[1] / p99s[0], len(one), len(many)))


# ---- (d) ---------------------------------------------------------------------------------------

def part_d(binary, work):
    say("(d) idle, 3 nodes, no traffic: CPU per node over %.0f s as %% of one core, and RSS; "
        "%d fresh cluster(s) per count" % (IDLE_S, IDLE_RUNS))
    for parts in IDLE_PARTS:
        pcts, rss = [], []  # one list per run: per node
        for run in range(IDLE_RUNS):
            c = Cluster(binary, work, parts)
            try:
                t_start = time.monotonic()
                c.wait_led([0, 1, 2], deadline_s=180)
                settled = time.monotonic() - t_start
                time.sleep(IDLE_SETTLE_S)
                before = [proc_ticks(pr.pid) for pr in c.procs]
                t0 = time.monotonic()
                time.sleep(IDLE_S)
                el = time.monotonic() - t0
                pct = [100.0 * (proc_ticks(pr.pid) - b) / HZ / el for pr, b in zip(c.procs, before)]
                mb = [proc_rss_kb(pr.pid) / 1024.0 for pr in c.procs]
                c.check_alive()
                pcts.append(pct)
                rss.append(mb)
                say("    %4d partitions, run %d (led and balanced %.1f s after start): CPU %s; RSS %s" % (
                    parts, run + 1, settled, ", ".join("%.2f%%" % x for x in pct),
                    ", ".join("%.1f MB" % x for x in mb)))
            finally:
                c.stop()
        per_node = [med([p[i] for p in pcts]) for i in range(3)]
        rss_node = [med([m[i] for m in rss]) for i in range(3)]
        worst = max(per_node)
        SUMMARY.append("(d) idle, %4d partitions: CPU per node %s of a core (medians of %d runs), RSS %s"
                       "  (target <= %.0f%%: %s)" % (
                           parts, ", ".join("%.2f%%" % x for x in per_node), len(pcts),
                           ", ".join("%.0f MB" % x for x in rss_node), IDLE_TARGET_PCT,
                           verdict(worst <= IDLE_TARGET_PCT)))


# ---- (f) ---------------------------------------------------------------------------------------

def key_in(parts, p):
    """A key whose slot is in partition p (CRC16/XMODEM as Redis Cluster)."""
    i = 0
    while True:
        k = "f%d-%d" % (p, i)
        crc = 0
        for ch in k.encode():
            crc ^= ch << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        if (crc % SLOTS) * parts // SLOTS == p:
            return k
        i += 1


def probe(ports, keys, t0):
    """From now on, every PROBE_INTERVAL_S and for every partition of `keys` ({partition: key})
    not yet acknowledged, a SET of its key on a new connection to the next of `ports`, without
    waiting for earlier attempts (each given PROBE_TIMEOUT_S). Returns {partition: seconds from
    t0 to its first +OK}; a partition without one within PROBE_DEADLINE_S is left out."""
    sel = selectors.DefaultSelector()
    done, k = {}, 0
    next_at = time.monotonic()
    try:
        while len(done) < len(keys) and time.monotonic() - t0 < PROBE_DEADLINE_S:
            now = time.monotonic()
            if now >= next_at:
                next_at = now + PROBE_INTERVAL_S
                for p, key in keys.items():
                    if p in done:
                        continue
                    port = ports[k % len(ports)]
                    k += 1
                    try:
                        s = socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S)
                        s.sendall(resp("SET", key, "x"))
                        s.setblocking(False)
                    except OSError:
                        continue
                    sel.register(s, selectors.EVENT_READ, [p, now, b""])
            for sk, _ in sel.select(max(0.0, next_at - time.monotonic())):
                s, st = sk.fileobj, sk.data
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                st[2] += chunk
                if chunk and not st[2].endswith(b"\r\n"):
                    continue
                if st[2].startswith(b"+OK") and st[0] not in done:
                    done[st[0]] = time.monotonic() - t0
                sel.unregister(s)
                s.close()
            now = time.monotonic()
            for sk in list(sel.get_map().values()):
                if now - sk.data[1] > PROBE_TIMEOUT_S or sk.data[0] in done:
                    sel.unregister(sk.fileobj)
                    sk.fileobj.close()
    finally:
        for sk in list(sel.get_map().values()):
            sk.fileobj.close()
        sel.close()
    return done


def failover_rounds(binary, work, parts, sig_name):
    """Returns (times in ms of the partitions that served again, partitions that never did,
    the slowest partition of each round in ms or inf)."""
    sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}[sig_name]
    c = Cluster(binary, work, parts)
    times, missing, per_round = [], 0, []
    try:
        for r in range(FAILOVER_ROUNDS):
            led = c.wait_led([0, 1, 2])
            if SETTLE_S > 0:
                time.sleep(SETTLE_S)
                led = c.wait_led([0, 1, 2])
            # Each node in turn: balanced, each leads a third of the partitions (with fewer
            # partitions than nodes, the leader of partition 0).
            victim = r % 3 if parts >= 3 else led[0]
            lost = sorted(p for p, i in led.items() if i == victim)
            ports = [c.ports[i] for i in range(3) if i != victim]
            keys = {p: key_in(parts, p) for p in lost}
            grace = [info_field(p, "cluster", "gossip_lag_grace_ms") for p in ports]
            calm_by = time.monotonic() + 90
            while MAX_GRACE_MS is not None and time.monotonic() < calm_by and \
                    any(int(g or 0) > MAX_GRACE_MS for g in grace):
                time.sleep(1)  # the grace learned from the last round's stall decays
                grace = [info_field(p, "cluster", "gossip_lag_grace_ms") for p in ports]
            t0 = time.monotonic()
            c.procs[victim].send_signal(sig)
            got = probe(ports, keys, t0)
            if sig == signal.SIGKILL:
                c.procs[victim].wait()
                c.start(victim)
            else:
                c.procs[victim].send_signal(signal.SIGCONT)
            ms = [got[p] * 1000 for p in lost if p in got]
            missing += len(lost) - len(ms)
            times += ms
            per_round.append(max(ms) if len(ms) == len(lost) else float("inf"))
            say("    %4d partition(s), round %2d: n%d led %d; writes resumed after %s ms%s"
                "  (survivors' loop-lag grace before: %s ms)" % (
                parts, r + 1, victim + 1, len(lost), ", ".join("%.0f" % x for x in sorted(ms)),
                "" if len(ms) == len(lost) else
                " (%d partition(s) with no write within %.0f s)" % (len(lost) - len(ms), PROBE_DEADLINE_S),
                "/".join(grace)))
    finally:
        c.stop()
    return times, missing, per_round


def part_f(binary, work):
    for sig_name in FAILOVER_SIGNALS:
        label = {"kill": "kill -9", "stop": "SIGSTOP"}[sig_name]
        say("(f) %s of a node of 3, %d rounds each with 1 and %d partitions, %.1f s idle before each" % (
            label, FAILOVER_ROUNDS, PARTS, SETTLE_S))
        for parts in (1, PARTS):
            times, missing, per_round = failover_rounds(binary, work, parts, sig_name)
            name = "(f) %-7s %4d partition(s):" % (label, parts)
            if not times:
                SUMMARY.append("%s FAILED (no partition served a write again)" % name)
                continue
            p99 = nearest_rank(times, 99)
            SUMMARY.append("%s p50 %.0f ms, p99 %s, max %s over %d partitions it led in %d rounds; "
                           "slowest of a round p50 %s  (target p99 <= %.0f ms: %s)" % (
                               name, med(times), "%.0f ms" % p99 if missing == 0 else "n/a",
                               "%.0f ms" % max(times) if missing == 0 else "never (%d)" % missing,
                               len(times) + missing, FAILOVER_ROUNDS,
                               "%.0f ms" % med(per_round) if all(math.isfinite(x) for x in per_round) else "n/a",
                               FAILOVER_TARGET_MS, verdict(missing == 0 and p99 <= FAILOVER_TARGET_MS)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("halyard", help="absolute path to the halyard binary")
    ap.add_argument("--summary", help="write the summary lines to this file too")
    args = ap.parse_args()
    if not os.access(args.halyard, os.X_OK):
        raise SystemExit("usage: bench/partitions.py /abs/path/to/halyard [--summary FILE]")
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("bench-partitions: redis-benchmark not found (package redis-tools)")
    # SIGTERM (bench/cluster.sh stopping us) unwinds through the finally blocks that stop clusters.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="halyard-bench-partitions.")
    try:
        for name, fn in (("b", part_b), ("d", part_d), ("e", part_e), ("f", part_f)):
            if name in ONLY:
                fn(args.halyard, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        say("summary (bench/partitions.py; a shared machine: rates move with the load):")
        for line in SUMMARY:
            say(line)
        if args.summary:
            with open(args.summary, "w") as f:
                f.write("".join(line + "\n" for line in SUMMARY))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`make bench-partitions`: what partitions cost and buy (issue 11 "Benchmarks"), side by side in
one run. Nothing here is a pass/fail test.

    bench/partitions.py /abs/path/to/halyard

(e) No tax for partitions: SET throughput and server CPU per SET of a 3-node cluster with
    PARTS partitions (default 8) against the same cluster with 1, with the same tool
    (redis-benchmark -t set -c 50 -r 100000, at -P 1 and -P 16; with --cluster for PARTS, which
    routes every key to its partition's leader, and sent to the leader for 1 partition, as
    --cluster refuses a cluster of one master). ROUNDS rounds (default 3), the order alternating per round;
    medians, ratios. CPU is user + sys of the three server processes from /proc, per SET.
(d) Idle cost: a 3-node cluster with 1 and with 64 partitions (the most a cluster may have
    today) and no traffic: each node's CPU over IDLE_S seconds (default 10), as % of a core.
(f) A node killed: a 3-node cluster with PARTS partitions, FAILOVER_ROUNDS rounds (default 10)
    of kill -9 of the node leading the most partitions; for every partition it led, the time
    from the kill until a SET of one of its keys through a survivor is acknowledged; p50/p99
    over all of them (the target: p99 under 1 s, as the single-group failover).

Everything listens on 127.0.0.1, lives in one temporary directory (removed at the end) and is
stopped by PID; every wait has a deadline.
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from cluster import free_port_pair  # noqa: E402

PARTS = int(os.environ.get("BENCH_PARTS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_N", "100000"))
N_PIPE = int(os.environ.get("BENCH_N_PIPE", "400000"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "10"))
FAILOVER_ROUNDS = int(os.environ.get("BENCH_FAILOVER_ROUNDS", "10"))
IDLE_PARTS = [int(x) for x in os.environ.get("BENCH_IDLE_PARTS", "1,64").split(",")]
ONLY = os.environ.get("BENCH_ONLY", "e,d,f").split(",")  # which of the parts to run
EXTRA = os.environ.get("BENCH_SERVER_ARGS", "").split()  # e.g. "--quiesce-ticks 0" for "before"
# (f): seconds to let the cluster go idle before each kill, so that the partitions are quiesced
# (quiesce-ticks heartbeat intervals) and fail over through node-level detection.
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "0"))
SLOTS = 16384
HZ = os.sysconf("SC_CLK_TCK")


def cmd(port, *args, timeout=5.0):
    """One RESP command on a fresh connection; returns the raw reply bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        req = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x for x in args))
        s.sendall(req)
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


class Cluster:
    def __init__(self, binary, workdir, parts):
        self.bin, self.parts = binary, parts
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

    def start(self, i):
        p = self.ports[i]
        log = open(os.path.join(self.dir, "n%d.log" % (i + 1)), "a")
        self.procs[i] = subprocess.Popen(
            [self.bin, "--node-id", "n%d" % (i + 1), "--port", str(p), "--peer-port", str(p + 10000),
             "--http-port", "0", "--data-dir", os.path.join(self.dir, "n%d" % (i + 1)), "--bootstrap",
             self.boot, "--cluster-secret", "bench", "--partitions", str(self.parts)] + EXTRA,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

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

    def wait_led(self, live, deadline_s=30, balanced=True):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                led = self.leaders(live[0])
                counts = [sum(1 for v in led.values() if v == i) for i in live]
                if len(led) == self.parts and set(led.values()) <= set(live) and \
                        (not balanced or max(counts) - min(counts) <= 1):
                    return led
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise SystemExit("bench-partitions: partitions not all led (balanced=%s) within %d s" % (balanced, deadline_s))

    def cpu_ticks(self):
        total = 0
        for pr in self.procs:
            with open("/proc/%d/stat" % pr.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total

    def stop(self):
        for pr in self.procs:
            if pr is not None and pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
        for pr in self.procs:
            if pr is not None:
                try:
                    pr.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()


def bench_set(c, pipeline, n):
    """(requests per second, server CPU µs per SET) of one redis-benchmark --cluster run."""
    # redis-benchmark --cluster wants two masters at least: one partition is benchmarked on
    # its leader directly (the same requests; --cluster would send them all there too).
    target = ["--cluster", "-p", str(c.ports[0])] if c.parts > 1 else ["-p", str(c.ports[c.leaders(0)[0]])]
    t0 = c.cpu_ticks()
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1"] + target + ["-t", "set", "-c", "50", "-r", "100000",
                          "-n", str(n), "-P", str(pipeline), "--csv"],
                         capture_output=True, text=True, timeout=600)
    cpu_s = (c.cpu_ticks() - t0) / HZ
    rps = None
    for line in out.stdout.splitlines():
        if line.startswith('"SET"'):
            rps = float(line.split(",")[1].strip('"'))
    if rps is None:
        print("    (a run failed: %s)" % (out.stderr or out.stdout).strip()[-200:], flush=True)
        return None
    return rps, cpu_s * 1e6 / n


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def part_e(binary, work):
    rows = {}
    for r in range(ROUNDS):
        order = [1, PARTS] if r % 2 == 0 else [PARTS, 1]
        for parts in order:
            c = Cluster(binary, work, parts)
            try:
                c.wait_led([0, 1, 2])
                for pipe, n in ((1, N), (16, N_PIPE)):
                    got = bench_set(c, pipe, n)
                    if got is not None:
                        rows.setdefault((parts, pipe), []).append(got)
            finally:
                c.stop()
    print("(e) SET, 3 nodes, redis-benchmark --cluster -c 50 -r 100000 (medians of %d rounds)" % ROUNDS)
    print("    %-10s %-4s %14s %16s" % ("partitions", "-P", "SET/s", "CPU us/SET"))
    for pipe in (1, 16):
        for parts in (1, PARTS):
            xs = rows.get((parts, pipe), [])
            print("    %-10d %-4d %14.0f %16.1f   (%d runs)" % (parts, pipe, med([x[0] for x in xs]),
                                                          med([x[1] for x in xs]), len(xs)))
        one, many = rows.get((1, pipe), []), rows.get((PARTS, pipe), [])
        if one and many:
            print("    -P %-2d %d partitions / 1: throughput %.2fx, CPU per SET %.2fx" % (
                pipe, PARTS, med([x[0] for x in many]) / med([x[0] for x in one]),
                med([x[1] for x in many]) / med([x[1] for x in one])))


def part_d(binary, work):
    print("(d) idle, 3 nodes, no traffic, %.0f s: CPU per node as %% of one core" % IDLE_S)
    for parts in IDLE_PARTS:
        c = Cluster(binary, work, parts)
        try:
            c.wait_led([0, 1, 2], deadline_s=60)
            time.sleep(2)  # the balancer's moves are over
            before = []
            for pr in c.procs:
                with open("/proc/%d/stat" % pr.pid) as f:
                    fl = f.read().rsplit(")", 1)[1].split()
                before.append(int(fl[11]) + int(fl[12]))
            t0 = time.monotonic()
            time.sleep(IDLE_S)
            el = time.monotonic() - t0
            pct = []
            for pr, b in zip(c.procs, before):
                with open("/proc/%d/stat" % pr.pid) as f:
                    fl = f.read().rsplit(")", 1)[1].split()
                pct.append(100.0 * (int(fl[11]) + int(fl[12]) - b) / HZ / el)
            print("    %3d partitions: %s" % (parts, ", ".join("%.1f%%" % x for x in pct)))
        finally:
            c.stop()


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


def part_f(binary, work):
    c = Cluster(binary, work, PARTS)
    times = []
    try:
        for r in range(FAILOVER_ROUNDS):
            led = c.wait_led([0, 1, 2])
            if SETTLE_S > 0:
                time.sleep(SETTLE_S)
                led = c.wait_led([0, 1, 2])
            counts = {i: sum(1 for v in led.values() if v == i) for i in range(3)}
            victim = max(counts, key=counts.get)
            lost = [p for p, i in led.items() if i == victim]
            via = (victim + 1) % 3
            done = {}
            c.procs[victim].send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            c.procs[victim].wait()

            def writer(p):
                key = key_in(PARTS, p)
                while time.monotonic() - t0 < 20:
                    try:
                        if cmd(c.ports[via], "SET", key, "x", timeout=10).startswith(b"+OK"):
                            done[p] = time.monotonic() - t0
                            return
                    except OSError:
                        pass
                    time.sleep(0.005)

            ts = [threading.Thread(target=writer, args=(p,)) for p in lost]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            times += [done.get(p, float("inf")) for p in lost]
            c.start(victim)
    finally:
        c.stop()
    times.sort()
    ms = [t * 1000 for t in times]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print("(f) kill -9 of the node leading most of %d partitions, %d rounds: %d partitions failed over;" % (
        PARTS, FAILOVER_ROUNDS, len(ms)))
    print("    time to the first acknowledged write through a survivor: p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
        med(ms), p99, ms[-1]))


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        raise SystemExit("usage: bench/partitions.py /abs/path/to/halyard")
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("bench-partitions: redis-benchmark not found (package redis-tools)")
    work = tempfile.mkdtemp(prefix="halyard-bench-partitions.")
    try:
        for name, fn in (("e", part_e), ("d", part_d), ("f", part_f)):
            if name in ONLY:
                fn(sys.argv[1], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`make bench-many-partitions`: a 3-node cluster with many partitions (default 4,096, the most
a cluster may have) starting, electing every leader and serving writes (issue 11, item 1 "1 to
at least 4096"). Nothing here is a pass/fail test; it exits non-zero only when a round does not
settle within its deadline (then it says so).

    bench/many_partitions.py /abs/path/to/halyard

Per round (ROUNDS, default 3; PARTS partitions, default 4096):
  - settle:   seconds from starting the three processes until every partition has a leader
              (HALYARD STATUS JSON of node 1: "partitions_without_leader" 0 and each node's
              view agreeing), then until leaderships are balanced (within one of each other);
  - writes:   one SET per partition (a key whose hash tag maps to it) sent to node 1, which
              proxies those it does not lead, then each read back through node 2; seconds for
              all the SETs, and the count answered +OK (must be PARTS);
  - idle:     each node's CPU (user + sys from /proc) over IDLE_S seconds (default 20) once
              settled and written, as % of one core; RSS per node.
Medians over the rounds. The machine is whatever it is: on a shared host, say so with the
figures (the load average is printed).

Everything listens on 127.0.0.1, lives in one temporary directory (removed at the end) and is
stopped by PID; every wait has a deadline (SETTLE_S, default 180 s). A round that does not
settle keeps its nodes' logs (the path is printed).
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from cluster import free_port_pair  # noqa: E402

PARTS = int(os.environ.get("BENCH_PARTS", "4096"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "20"))
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "180"))
SLOTS = 16384
HZ = os.sysconf("SC_CLK_TCK")


def crc16(data):
    """Redis Cluster's CRC16 (XMODEM)."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def tags_for_partitions(parts):
    """One hash tag per partition: a string whose slot lies in that partition's range."""
    tags, i = {}, 0
    while len(tags) < parts:
        t = str(i).encode()
        p = (crc16(t) % SLOTS) * parts // SLOTS
        tags.setdefault(p, t.decode())
        i += 1
    return tags


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
        self.keep = False
        for i in range(3):
            p = self.ports[i]
            log = open(os.path.join(self.dir, "n%d.log" % (i + 1)), "a")
            self.procs[i] = subprocess.Popen(
                [self.bin, "--node-id", "n%d" % (i + 1), "--bind", "127.0.0.1", "--port", str(p),
                 "--peer-port", str(p + 10000), "--http-port", "0", "--data-dir",
                 os.path.join(self.dir, "n%d" % (i + 1)), "--bootstrap", self.boot, "--cluster-secret",
                 "bench", "--partitions", str(parts), "--log-level", "warn"],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()

    def status(self, i):
        r = redis.Redis(port=self.ports[i], socket_timeout=10)
        try:
            return json.loads(r.execute_command("HALYARD", "STATUS", "JSON"))
        finally:
            r.close()

    def leaders(self, i):
        """(partitions without a leader, {node: partitions led}) as node i sees them."""
        s = self.status(i)
        return s["partitions_without_leader"], s["leaders"]

    def cpu_ticks(self, i):
        with open("/proc/%d/stat" % self.procs[i].pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kb(self, i):
        with open("/proc/%d/status" % self.procs[i].pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        for pr in self.procs:
            if pr is not None and pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
        for pr in self.procs:
            if pr is not None:
                try:
                    pr.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pr.kill()
                    pr.wait()


def wait_settled(c, t0):
    """(seconds until every partition has a leader on every node's view, seconds until
    balanced within one); raises SystemExit past SETTLE_S."""
    led_at = None
    while time.monotonic() < t0 + SETTLE_S:
        try:
            views = [c.leaders(i) for i in range(3)]
        except (redis.RedisError, OSError, ValueError, KeyError):
            time.sleep(0.2)
            continue
        if all(v[0] == 0 and sum(v[1].values()) == c.parts for v in views):
            if led_at is None:
                led_at = time.monotonic() - t0
            counts = list(views[0][1].values())
            if len(counts) == 3 and max(counts) - min(counts) <= 1:
                return led_at, time.monotonic() - t0
        time.sleep(0.2)
    c.keep = True  # its logs, for whoever reads the failure
    if led_at is not None:
        raise SystemExit("bench-many-partitions: every one of %d partitions led %.1f s after the start, "
                         "leaderships not balanced within %.0f s (logs kept in %s)" % (c.parts, led_at, SETTLE_S, c.dir))
    raise SystemExit("bench-many-partitions: %d partitions not all led within %.0f s (logs kept in %s)"
                     % (c.parts, SETTLE_S, c.dir))


def write_all(c, tags):
    """(seconds for one SET per partition through node 1, SETs answered OK, reads that
    returned the value through node 2)."""
    r1 = redis.Redis(port=c.ports[0], socket_timeout=60)
    r2 = redis.Redis(port=c.ports[1], socket_timeout=60)
    try:
        t0 = time.monotonic()
        pipe = r1.pipeline(transaction=False)
        for p in range(c.parts):
            pipe.set("k{%s}" % tags[p], "v%d" % p)
        oks = sum(1 for x in pipe.execute(raise_on_error=False) if x is True)
        took = time.monotonic() - t0
        pipe = r2.pipeline(transaction=False)
        for p in range(c.parts):
            pipe.get("k{%s}" % tags[p])
        got = pipe.execute(raise_on_error=False)
        reads = sum(1 for p, v in enumerate(got) if v == ("v%d" % p).encode())
        return took, oks, reads
    finally:
        r1.close()
        r2.close()


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="halyard-bench-parts-")
    tags = tags_for_partitions(PARTS)
    rows = []
    try:
        for rnd in range(ROUNDS):
            t0 = time.monotonic()
            c = Cluster(binary, work, PARTS)
            try:
                led_s, balanced_s = wait_settled(c, t0)
                took, oks, reads = write_all(c, tags)
                a = [c.cpu_ticks(i) for i in range(3)]
                time.sleep(IDLE_S)
                cpu = [(c.cpu_ticks(i) - a[i]) * 100.0 / HZ / IDLE_S for i in range(3)]
                rss = [c.rss_kb(i) / 1024.0 for i in range(3)]
                load = open("/proc/loadavg").read().split()[0]
                rows.append((led_s, balanced_s, took, oks, reads, cpu, rss))
                print("round %d: every leader %.1f s, balanced %.1f s; %d SETs in %.2f s (%d OK, %d "
                      "read back); idle CPU %% per node %s; RSS MB %s; load %s" % (
                          rnd + 1, led_s, balanced_s, PARTS, took, oks, reads,
                          " ".join("%.2f" % x for x in cpu), " ".join("%.0f" % x for x in rss), load),
                      flush=True)
            finally:
                c.stop()
                if not c.keep:
                    shutil.rmtree(c.dir, ignore_errors=True)
    finally:
        if not any(os.scandir(work)):
            shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    print("%d partitions, 3 nodes, medians of %d rounds: every partition led %.1f s after the start, "
          "balanced %.1f s; one SET per partition through one node %.2f s; idle CPU %.2f%% of a "
          "core per node (max %.2f%%); RSS %.0f MB per node (max %.0f)" % (
              PARTS, len(rows), med([r[0] for r in rows]), med([r[1] for r in rows]),
              med([r[2] for r in rows]), med([med(r[5]) for r in rows]), max(max(r[5]) for r in rows),
              med([med(r[6]) for r in rows]), max(max(r[6]) for r in rows)))
    bad = [r for r in rows if r[3] != PARTS or r[4] != PARTS]
    if bad:
        raise SystemExit("bench-many-partitions: a round's SETs or reads were not all answered")


if __name__ == "__main__":
    main()

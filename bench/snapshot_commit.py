#!/usr/bin/env python3
"""The WAL's group commit while partitions snapshot (issue 12's leftovers): how long a group
commit takes, and how long a client's write to a partition waits, while every partition of the
node writes a snapshot file. Nothing here is a pass/fail test; it prints its figures.

    bench/snapshot_commit.py /abs/path/to/halyard [--partitions 8] [--mib-per-partition 1]
                             [--rounds 5] [--rate 300]

One fresh cluster of 3 nodes (bench/partitions.py's Cluster, replication factor 3: every node
holds every partition): load --mib-per-partition MiB of 1,000-byte values into each partition,
then a steady paced load of SETs (--rate per second, one connection to node 1, which proxies
what it does not lead) while, --rounds times, every partition gets 100 new keys and then
HALYARD SNAPSHOT on every node (each node writes one snapshot file per partition), a second
apart. Reported: each node's WAL group commits from /metrics (halyard_wal_fsync_duration_seconds:
how many took over 10, 25, 50 and 100 ms, and the mean) counted over the rounds only, and the
steady load's p50 / p99 / max during the rounds, and the snapshot files each node wrote off the
WAL thread (halyard_snapshot_file_write_seconds: count and mean, since start). Servers are stopped by PID and the directory is
removed at the end.
"""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import partitions as bp  # noqa: E402


class Cluster(bp.Cluster):
    NAME = "snapshot_commit"

    def argv(self, i):
        a = super().argv(i)
        k = a.index("--http-port")
        a[k + 1] = str(self.ports[i] + 1000)  # free_port_pair checked it
        return a


def fsync_buckets(port, name="halyard_wal_fsync_duration_seconds"):
    """{upper bound in seconds: cumulative count} and (count, sum) of a histogram of /metrics:
    by default the WAL's group commits."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    b, count, total = {}, 0, 0.0
    for line in text.splitlines():
        if line.startswith(name + "_bucket"):
            le = line.split('le="')[1].split('"')[0]
            b[float("inf") if le == "+Inf" else float(le)] = int(line.split()[-1])
        elif line.startswith(name + "_count"):
            count = int(line.split()[-1])
        elif line.startswith(name + "_sum"):
            total = float(line.split()[-1])
    return b, count, total


TAGS = {}


def key_of(parts, p, i):
    """A key of partition p: bench/partitions.py's key_in gives one, used as its hash tag."""
    if (parts, p) not in TAGS:
        TAGS[parts, p] = bp.key_in(parts, p)
    return "{%s}:%d" % (TAGS[parts, p], i)


def load(port, keys, value):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")
        for lo in range(0, len(keys), 200):
            chunk = keys[lo:lo + 200]
            s.sendall(b"".join(bp.resp("SET", k, value) for k in chunk))
            for _ in chunk:
                line = f.readline()
                if not line.startswith(b"+OK"):
                    raise SystemExit("load: %r" % line)


def steady(port, keys, rate, stop, lat):
    value = b"v" * 1000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        t0, n = time.monotonic(), 0
        while not stop.is_set():
            due = t0 + n / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            s.sendall(bp.resp("SET", keys[n % len(keys)], value))
            f.readline()
            lat.append((time.monotonic() - due) * 1000.0)  # from the schedule: no omission
            n += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--mib-per-partition", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=300)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="snapcommit-")
    c = Cluster(a.binary, work, a.partitions)
    try:
        c.wait_led([0, 1, 2])
        per = int(a.mib_per_partition * 1048576 / 1000)
        value = b"x" * 1000
        for p in range(a.partitions):
            load(c.ports[0], [key_of(a.partitions, p, i) for i in range(per)], value)
        c.wait_led([0, 1, 2])
        for port in c.ports:  # the load's own snapshots stay out of the figures
            bp.cmd(port, "HALYARD", "SNAPSHOT")
        time.sleep(2)
        before = [fsync_buckets(p + 1000) for p in c.ports]
        stop, lat = threading.Event(), []
        hot = [key_of(a.partitions, p, 0) for p in range(a.partitions)]
        t = threading.Thread(target=steady, args=(c.ports[0], hot, a.rate, stop, lat))
        t.start()
        for r in range(a.rounds):
            for p in range(a.partitions):
                load(c.ports[0], [key_of(a.partitions, p, per + r * 100 + i) for i in range(100)],
                     value)
            for port in c.ports:
                bp.cmd(port, "HALYARD", "SNAPSHOT", timeout=30)
            time.sleep(1.0)
        stop.set()
        t.join(30)
        after = [fsync_buckets(p + 1000) for p in c.ports]
        print("binary %s, %d partitions of %.1f MiB, %d rounds" % (
            a.binary, a.partitions, a.mib_per_partition, a.rounds))
        for i, ((b0, n0, s0), (b1, n1, s1)) in enumerate(zip(before, after)):
            n = n1 - n0
            over = {lim: (n1 - b1.get(lim, 0)) - (n0 - b0.get(lim, 0)) for lim in (0.01, 0.025, 0.05, 0.1)}
            print("n%d: %d group commits, mean %.2f ms; over 10 ms %d, 25 ms %d, 50 ms %d, 100 ms %d" % (
                i + 1, n, (s1 - s0) * 1000.0 / max(n, 1), over[0.01], over[0.025], over[0.05], over[0.1]))
        for i, p in enumerate(c.ports):  # absent before the snapshot writer (0 files)
            _, n, total = fsync_buckets(p + 1000, "halyard_snapshot_file_write_seconds")
            print("n%d: %d snapshot files written off the WAL thread, mean %.1f ms" % (
                i + 1, n, total * 1000.0 / max(n, 1)))
        lat.sort()
        if lat:
            print("steady SETs: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
                len(lat), lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]))
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Keepalive traffic of an idle halyard cluster (issue 14: links off gossip's ring).

Starts --nodes N nodes on loopback, waits until gossip holds everybody alive and --settle
seconds more, then reads each node's /metrics twice, --seconds apart, and prints per node and
second: PINGs sent, beacons sent, the keepalive frames they make (every PING is answered by a
PONG, so 2 x PINGs + beacons), the PINGs on links off gossip's ring (those that carried no
beacon: the O(n^2) part), frames received from peers when the binary counts them, links closed
for idleness, and the CPU time the node used (/proc/PID/stat). Medians over the nodes.

A benchmark, not a test: the figures depend on the machine (say whether it was shared).

    bench/peer_idle.py /abs/path/to/halyard [--nodes 9] [--seconds 20] [--settle 10]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from detect import wait_all_alive  # noqa: E402  (bench/detect.py)
from failover import _Tmp  # noqa: E402

FAMILIES = ("halyard_peer_pings_sent_total", "halyard_peer_beacons_sent_total",
            "halyard_peer_frames_received_total", "halyard_peer_idle_closes_total")


def counters(c, i):
    """{(family, member): value} of node i's per-member link counters."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.http_port(i), timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        for fam in FAMILIES:
            if line.startswith(fam + "{"):
                out[(fam, line.split('"')[1])] = float(line.rsplit(" ", 1)[1])
    return out


def rates(before, after, dt):
    """{family: per second summed over the members}, and the PINGs per second on the links
    that carried no beacon in the window (off gossip's ring)."""
    total, off = {}, 0.0
    for (fam, m), v in after.items():
        r = (v - before.get((fam, m), 0)) / dt
        total[fam] = total.get(fam, 0.0) + r
        beacons = after.get((FAMILIES[1], m), 0) - before.get((FAMILIES[1], m), 0)
        if fam == FAMILIES[0] and beacons == 0:
            off += r
    return total, off


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE")
    a = ap.parse_args()
    os.environ["HALYARD_BIN"] = a.binary
    root = tempfile.mkdtemp(prefix="halyard-peer-idle-")
    c = Cluster(_Tmp(root), a.nodes, extra=dict(s.split("=", 1) for s in a.set))
    c.start_all()
    try:
        c.leader()
        wait_all_alive(c, 60)
        time.sleep(a.settle)  # joins, elections and catch-up over: an idle cluster
        n = len(c.ports)
        before = [counters(c, i) for i in range(n)]
        cpu0 = [cpu_s(c.nodes[i].pid) for i in range(n)]
        t0 = time.monotonic()
        time.sleep(a.seconds)  # the measurement window itself
        after = [counters(c, i) for i in range(n)]
        cpu1 = [cpu_s(c.nodes[i].pid) for i in range(n)]
        dt = time.monotonic() - t0
        per = [rates(before[i], after[i], dt) for i in range(n)]
        rate = {fam: [per[i][0].get(fam, 0.0) for i in range(n)] for fam in FAMILIES}
        off = [per[i][1] for i in range(n)]
        keep = [2 * p + b for p, b in zip(rate[FAMILIES[0]], rate[FAMILIES[1]])]
        med = statistics.median
        have_recv = any(k[0] == FAMILIES[2] for k in after[0])
        print("%d idle nodes, %.0f s (binary %s): per node and second, median [min-max] over the "
              "nodes:" % (n, dt, a.binary))
        print("  PINGs sent %.1f [%.1f-%.1f], beacons %.1f, keepalive frames (2 x PINGs + beacons) "
              "%.1f [%.1f-%.1f]" % (med(rate[FAMILIES[0]]), min(rate[FAMILIES[0]]),
                                     max(rate[FAMILIES[0]]), med(rate[FAMILIES[1]]), med(keep),
                                     min(keep), max(keep)))
        print("  PINGs on the links off the ring (no beacon in the window) %.2f [%.2f-%.2f]" % (
            med(off), min(off), max(off)))
        if have_recv:
            print("  frames received %.1f [%.1f-%.1f], idle links closed %.2f" % (
                med(rate[FAMILIES[2]]), min(rate[FAMILIES[2]]), max(rate[FAMILIES[2]]),
                med(rate[FAMILIES[3]])))
        cpu = [(b - x) / dt * 100.0 for x, b in zip(cpu0, cpu1)]
        print("  CPU %.2f%% [%.2f-%.2f] of a core" % (med(cpu), min(cpu), max(cpu)), flush=True)
    finally:
        c.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Failure detection of a 3-node halyard cluster on loopback (`make bench-detect`; issue 14).

1. Detection time: ROUNDS rounds of kill -9 and ROUNDS of SIGSTOP of one member (each member
   in turn). From the signal on, both other nodes are polled (INFO cluster's gossip_member
   lines, every 5 ms on a kept connection) and the round's SUSPECT time and DEAD time are
   when the *last* of them marks the member so. Then the member is restarted (or SIGCONT)
   and the next round waits until everybody holds everybody alive again. Prints p50 and p99
   per fault (nearest rank: with 20 rounds the p99 is the worst round).
2. False suspicions under load: for HOG_SECONDS, a CPU hog saturates every core (stress-ng
   when installed, else one busy python loop per core) while redis-benchmark sends SETs to
   the cluster; no fault is injected, so every MEMBER_SUSPECT event any node records is a
   false suspicion. Prints them per node-hour.

A benchmark, not a test: timings depend on the machine (say whether it was shared).

    bench/detect.py /abs/path/to/halyard [--rounds 20] [--hog-seconds 300]
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from conftest import RawConn  # noqa: E402

POLL_S = 0.005


class _Tmp:
    """Enough of pytest's tmp_path_factory for Cluster."""

    def __init__(self, root):
        self.root, self.n = root, 0

    def mktemp(self, name):
        self.n += 1
        path = os.path.join(self.root, "%s%d" % (name, self.n))
        os.makedirs(path)
        return path


def percentile(values, p):
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def views(conn):
    """{member: state} from INFO cluster on an open connection."""
    text = conn.cmd("INFO", "cluster").decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("gossip_member_"):
            name, rest = line[len("gossip_member_"):].split(":", 1)
            out[name] = dict(p.split("=", 1) for p in rest.split(","))["state"]
    return out


def wait_all_alive(c, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ok = True
        for i in range(len(c.ports)):
            try:
                with RawConn(c.ports[i], timeout=1.0) as conn:
                    v = views(conn)
                ok = ok and len(v) == len(c.ports) - 1 and all(s == "alive" for s in v.values())
            except OSError:
                ok = False
        if ok:
            return
        time.sleep(0.05)
    raise RuntimeError("the cluster did not converge to all alive within %d s" % deadline_s)


def one_round(c, victim, sig):
    """(suspect_ms, dead_ms) until every other node marks the victim so."""
    name = c.names[victim]
    others = [i for i in range(len(c.ports)) if i != victim]
    conns = {i: RawConn(c.ports[i], timeout=2.0) for i in others}
    seen_s, seen_d = {}, {}
    try:
        t0 = time.monotonic()
        c.kill(victim, sig)
        while len(seen_d) < len(others):
            if time.monotonic() - t0 > 30:
                raise RuntimeError("%s not declared dead within 30 s" % name)
            for i in others:
                st = views(conns[i]).get(name)
                now = time.monotonic()
                if st in ("suspect", "dead") and i not in seen_s:
                    seen_s[i] = now
                if st == "dead" and i not in seen_d:
                    seen_d[i] = now
                    seen_s.setdefault(i, now)
            time.sleep(POLL_S)
    finally:
        for conn in conns.values():
            conn.close()
    return (max(seen_s.values()) - t0) * 1000.0, (max(seen_d.values()) - t0) * 1000.0


def detection(c, rounds):
    results = {"kill -9": ([], []), "SIGSTOP": ([], [])}
    for r in range(rounds):
        for fault, sig in (("kill -9", signal.SIGKILL), ("SIGSTOP", signal.SIGSTOP)):
            victim = (r + (fault == "SIGSTOP")) % len(c.ports)
            wait_all_alive(c)
            s, d = one_round(c, victim, sig)
            results[fault][0].append(s)
            results[fault][1].append(d)
            print("round %2d %-8s %s: SUSPECT everywhere after %6.1f ms, DEAD after %6.1f ms"
                  % (r + 1, fault, c.names[victim], s, d), flush=True)
            if sig == signal.SIGKILL:
                c.start(victim)
            else:
                os.kill(c.nodes[victim].pid, signal.SIGCONT)
    return results


def member_events(c):
    """(MEMBER_SUSPECT, MEMBER_FAILED) events recorded by all nodes so far."""
    s = f = 0
    for p in c.ports:
        with RawConn(p, timeout=2.0) as conn:
            evs = [json.loads(e) for e in conn.cmd("HALYARD", "EVENTS", "COUNT", "1000")]
        s += sum(1 for e in evs if e["type"] == "MEMBER_SUSPECT")
        f += sum(1 for e in evs if e["type"] == "MEMBER_FAILED")
    return s, f


def hog(seconds, port):
    """Starts the CPU hog and the load; returns the processes (stopped by the caller)."""
    procs = []
    cores = os.cpu_count() or 2
    if shutil.which("stress-ng"):
        procs.append(subprocess.Popen(["stress-ng", "--cpu", str(cores), "--timeout",
                                       "%ds" % (seconds + 5), "--quiet"]))
        what = "stress-ng --cpu %d" % cores
    else:
        for _ in range(cores):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        what = "%d busy python loops" % cores
    rb = shutil.which("redis-benchmark")
    if rb:
        procs.append(subprocess.Popen([rb, "-p", str(port), "-t", "set", "-n", "100000000",
                                       "-c", "20", "-q", "-r", "100000"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        what += " + redis-benchmark SET -c 20"
    return procs, what


def false_suspicions(c, seconds):
    wait_all_alive(c)
    before = member_events(c)
    li = 0
    procs, what = hog(seconds, c.ports[li])
    try:
        time.sleep(seconds)  # the measurement window itself (a benchmark, not a test)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    after = member_events(c)
    n, dead = after[0] - before[0], after[1] - before[1]
    node_hours = len(c.ports) * seconds / 3600.0
    print("false suspicions under %s for %d s: %d MEMBER_SUSPECT events on %d nodes = %.2f per "
          "node-hour (target 0); false deaths (MEMBER_FAILED): %d" % (what, seconds, n,
                                                                       len(c.ports),
                                                                       n / node_hours, dead),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--hog-seconds", type=int, default=300)
    a = ap.parse_args()
    os.environ["HALYARD_BIN"] = a.binary
    root = tempfile.mkdtemp(prefix="halyard-detect-")
    c = Cluster(_Tmp(root), 3)
    c.start_all()
    try:
        c.leader()
        res = detection(c, a.rounds) if a.rounds > 0 else {}
        for fault, (s, d) in res.items():
            print("%-8s (%d rounds): SUSPECT p50 %.0f ms p99 %.0f ms; DEAD p50 %.0f ms p99 %.0f ms"
                  % (fault, len(s), percentile(s, 50), percentile(s, 99), percentile(d, 50),
                     percentile(d, 99)), flush=True)
        if a.hog_seconds > 0:
            false_suspicions(c, a.hog_seconds)
    finally:
        c.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

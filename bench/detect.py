#!/usr/bin/env python3
"""Failure detection of a 3-node (--nodes) halyard cluster on loopback (`make bench-detect`;
issue 14).

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
3. Beacons: before the rounds, the liveness beacons each node sent per second over 5 s of an
   idle cluster (/metrics halyard_peer_beacons_sent_total; absent before the ring), and the
   links they went on: with gossip's ring, 4 links per node from 6 nodes on, not n - 1.

A benchmark, not a test: timings depend on the machine (say whether it was shared).

    bench/detect.py /abs/path/to/halyard [--nodes 3] [--rounds 20] [--hog-seconds 300]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from conftest import RawConn  # noqa: E402
from failover import _Tmp, percentile  # noqa: E402  (bench/failover.py: same scaffolding)

POLL_S = 0.005


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


BEACON_BYTES = 20  # an empty HEARTBEAT frame: 16 bytes of header and a 4-byte count


def beacons_sent(c, i):
    """{member: beacons sent} of node i (/metrics), {} when the binary does not count them."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.http_port(i), timeout=2) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("halyard_peer_beacons_sent_total{"):
            labels, value = line.split("{", 1)[1].rsplit("} ", 1)
            out[labels.split('"')[1]] = float(value)
    return out


def beacon_rate(c, seconds=5.0):
    """Prints the beacons per second a node sent over `seconds` of an idle cluster (the mean
    over the nodes), the links that carried them, and their payload in bytes per second."""
    before = [beacons_sent(c, i) for i in range(len(c.ports))]
    if not before[0]:
        print("beacons: not counted by this binary (no halyard_peer_beacons_sent_total)", flush=True)
        return
    time.sleep(seconds)  # the measurement window itself
    after = [beacons_sent(c, i) for i in range(len(c.ports))]
    rates = [sum(after[i][m] - before[i].get(m, 0) for m in after[i]) / seconds
             for i in range(len(c.ports))]
    links = [sum(1 for m in after[i] if after[i][m] > before[i].get(m, 0)) for i in range(len(c.ports))]
    mean = sum(rates) / len(rates)
    print("beacons on an idle cluster of %d nodes: %.1f a second per node on %d-%d of its %d links "
          "(%.0f bytes/s of payload per node)" % (len(c.ports), mean, min(links), max(links),
                                                  len(c.ports) - 1, mean * BEACON_BYTES), flush=True)


def member_events(c):
    """(MEMBER_SUSPECT, MEMBER_FAILED) events recorded by all nodes so far."""
    s = f = 0
    for p in c.ports:
        with RawConn(p, timeout=2.0) as conn:
            evs = [json.loads(e) for e in conn.cmd("HALYARD", "EVENTS", "COUNT", "1000")]
        s += sum(1 for e in evs if e["type"] == "MEMBER_SUSPECT")
        f += sum(1 for e in evs if e["type"] == "MEMBER_FAILED")
    return s, f


def last_ids(c):
    """The id of the last event each node recorded (0 when none)."""
    ids = []
    for p in c.ports:
        with RawConn(p, timeout=2.0) as conn:
            evs = [json.loads(e) for e in conn.cmd("HALYARD", "EVENTS", "COUNT", "1000")]
        ids.append(max([e["id"] for e in evs], default=0))
    return ids


def print_suspicions(c, ids, t0_ms):
    """Each MEMBER_SUSPECT a node recorded after ids, with its time from the hog's start: a
    suspicion in the first seconds is one the loop-lag grace had not learned yet."""
    for i, p in enumerate(c.ports):
        with RawConn(p, timeout=2.0) as conn:
            evs = [json.loads(e) for e in conn.cmd("HALYARD", "EVENTS", "SINCE", str(ids[i]),
                                                    "COUNT", "1000")]
        for e in evs:
            if e["type"] == "MEMBER_SUSPECT":
                print("  %s suspected %s at +%.1f s" % (c.names[i], e["member"],
                                                         (e["time"] - t0_ms) / 1000.0), flush=True)


CAUSES = ("gossip_suspect_probe", "gossip_suspect_phi", "gossip_suspect_link", "gossip_stalls",
          "gossip_grace_saved_probe", "gossip_grace_saved_phi", "gossip_peer_stalls", "gossip_peer_gaps")


def causes(c):
    """This node's own suspicions by cause, the turns it skipped as stalled, the suspicions
    the loop-lag grace held back and the refuted silences that taught it, summed over the nodes
    (INFO cluster); the largest stall seen and the largest grace now."""
    total, stall_max, grace = dict.fromkeys(CAUSES, 0), 0, 0
    for p in c.ports:
        with RawConn(p, timeout=2.0) as conn:
            text = conn.cmd("INFO", "cluster").decode()
        kv = dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
        for k in CAUSES:
            total[k] += int(kv.get(k, 0))
        stall_max = max(stall_max, int(kv.get("gossip_stall_max_ms", 0)))
        grace = max(grace, int(kv.get("gossip_lag_grace_ms", 0)))
    return total, stall_max, grace


def hog(seconds, port, workers=0):
    """Starts the CPU hog (workers busy loops; 0: one per core) and the load; returns the
    processes (stopped by the caller)."""
    procs = []
    cores = workers or os.cpu_count() or 2
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
        # redis-benchmark stops at the first error reply (an election under the hog answers
        # UNKNOWN or TRYAGAIN): started again at once, so the load lasts the whole window.
        out = tempfile.NamedTemporaryFile(prefix="halyard-detect-rb-", delete=False)
        loop = ("while :; do %s -p %d -t set -n 100000000 -c 20 -q -r 100000; echo RESTART; done"
                % (rb, port))
        procs.append(subprocess.Popen(["bash", "-c", loop], stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        procs[-1].out_path = out.name
        what += " + redis-benchmark SET -c 20"
    return procs, what


def false_suspicions(c, seconds, workers=0):
    wait_all_alive(c)
    before = member_events(c)
    causes_before, _, _ = causes(c)
    ids = last_ids(c)
    t0_ms = time.time() * 1000.0
    li = 0
    procs, what = hog(seconds, c.ports[li], workers)
    try:
        time.sleep(seconds)  # the measurement window itself (a benchmark, not a test)
    finally:
        for p in procs:
            if hasattr(p, "out_path"):
                os.killpg(p.pid, signal.SIGTERM)  # the loop and its redis-benchmark
                with open(p.out_path, "rb") as f:
                    text = f.read().decode(errors="replace")
                os.unlink(p.out_path)
                errors = sorted({l.strip() for l in text.replace("\r", "\n").splitlines()
                                 if l.startswith("Error")})
                print("load: redis-benchmark restarted %d times after errors %s" % (
                    text.count("RESTART"), errors), flush=True)
            else:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    after = member_events(c)
    causes_after, stall_max, grace = causes(c)
    n, dead = after[0] - before[0], after[1] - before[1]
    node_hours = len(c.ports) * seconds / 3600.0
    print("false suspicions under %s for %d s: %d MEMBER_SUSPECT events on %d nodes = %.2f per "
          "node-hour (target 0); false deaths (MEMBER_FAILED): %d" % (what, seconds, n,
                                                                       len(c.ports),
                                                                       n / node_hours, dead),
          flush=True)
    print("  own suspicions by cause: %s; largest stall %d ms; largest loop-lag grace at the end "
          "%d ms" % (", ".join("%s %d" % (k[len("gossip_"):], causes_after[k] - causes_before[k])
                               for k in CAUSES), stall_max, grace), flush=True)
    print_suspicions(c, ids, t0_ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--hog-seconds", type=int, default=300)
    ap.add_argument("--hog-workers", type=int, default=0,
                    help="busy loops of the hog (default: one per core)")
    ap.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                    help="a server setting for every node (e.g. gossip-stall-ms=0)")
    a = ap.parse_args()
    os.environ["HALYARD_BIN"] = a.binary
    root = tempfile.mkdtemp(prefix="halyard-detect-")
    c = Cluster(_Tmp(root), a.nodes, extra=dict(s.split("=", 1) for s in a.set))
    if a.set:
        print("settings: %s" % " ".join(a.set), flush=True)
    c.start_all()
    try:
        c.leader()
        wait_all_alive(c)
        beacon_rate(c)
        res = detection(c, a.rounds) if a.rounds > 0 else {}
        for fault, (s, d) in res.items():
            print("%-8s (%d rounds): SUSPECT p50 %.0f ms p99 %.0f ms; DEAD p50 %.0f ms p99 %.0f ms"
                  % (fault, len(s), percentile(s, 50), percentile(s, 99), percentile(d, 50),
                     percentile(d, 99)), flush=True)
        if a.hog_seconds > 0:
            false_suspicions(c, a.hog_seconds, a.hog_workers)
    finally:
        c.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

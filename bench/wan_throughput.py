#!/usr/bin/env python3
"""`make bench-wan-throughput`: a source cluster's write throughput with one WAN link against
without (docs/wan.md "Figures"; the issue asks for at least 0.9x).

    bench/wan_throughput.py /abs/path/to/halyard [ROUNDS]

Two sources of 1 node and 2 partitions, one with an active-passive link to a target of 1 node
and 2 partitions, the other without, on 127.0.0.1 (one source added and removed the link
would resync the target at each round). Rounds alternate between them (which goes first
alternates too): each round is one
redis-benchmark run of BENCH_WAN_N SETs (default 50,000; BENCH_WAN_CONNS connections, default 16, 10,000 random keys,
16-byte values) against the source. Reported per round and as medians: requests per second,
and the source's and the target's CPU time per SET (utime + stime from /proc over the round,
divided by the SETs; the target's is its share of the link's work: the round with a link ends
when the target acknowledged every change), then the ratio of the medians with a link to
those without.

Not a pass/fail test. The machine it runs on may be shared: figures move with its load, which
the alternation spreads over both kinds of round. Every process is stopped by PID and every
wait has a deadline.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from cluster import Cluster, SECRET  # noqa: E402
from failover import _Tmp  # noqa: E402  (bench/failover.py: same scaffolding)
from conftest import RawConn, wait_for  # noqa: E402

N = int(os.environ.get("BENCH_WAN_N", "50000"))
CONNS = os.environ.get("BENCH_WAN_CONNS", "16")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def call(port, *args):
    with RawConn(port, timeout=10.0) as c:
        return c.cmd(*args)


def lagging(src):
    st = call(src.ports[0], "HALYARD", "WAN", "STATUS", "JSON")
    links = json.loads(st.decode() if isinstance(st, bytes) else st)["links"]
    ps = links[0]["partitions"] if links else []
    return len(ps) < 2 or any(p["lag_entries"] > 0 or p["state"] != "idle" for p in ps)


def one_round(src, dst, link):
    s0, d0 = cpu_s(src.nodes[0].pid), cpu_s(dst.nodes[0].pid)
    out = subprocess.run(["redis-benchmark", "-p", str(src.ports[0]), "-t", "set", "-n", str(N),
                          "-c", CONNS, "-r", "10000", "-d", "16", "-q", "--csv"],
                         capture_output=True, text=True, timeout=600).stdout
    if link:
        # The round ends when the target has every change: its CPU counts them all.
        wait_for(lambda: not lagging(src), 120, "the link to catch up", interval=0.05)
    s1, d1 = cpu_s(src.nodes[0].pid), cpu_s(dst.nodes[0].pid)
    rps = float([ln for ln in out.splitlines() if ln.startswith('"SET"')][0].split(",")[1]
                .strip('"'))
    return rps, (s1 - s0) / N * 1e6, (d1 - d0) / N * 1e6


def main():
    os.environ["HALYARD_BIN"] = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    root = tempfile.mkdtemp(prefix="bench-wan-tput-")
    dirs = _Tmp(root)
    dst = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "west"})
    plain = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "north"})
    src = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "east"})
    res = {False: [], True: []}
    try:
        for c in (dst, plain, src):
            c.start_all()
            wait_for(lambda: call(c.ports[0], "SET", "warm", "1") == "OK", 30, "a leader")
        wait_for(lambda: call(src.ports[0], "HALYARD", "WAN", "ADD", "dr",
                              "127.0.0.1:%d" % (dst.ports[0] + 10000), "SECRET",
                              SECRET) == "OK", 30, "the link")
        wait_for(lambda: not lagging(src), 60, "the link to be idle", interval=0.05)
        for r in range(rounds):
            for link in ((False, True) if r % 2 == 0 else (True, False)):
                rps, s_us, d_us = one_round(src if link else plain, dst, link)
                res[link].append((rps, s_us, d_us))
                print("round %d %-12s %9.0f SET/s  source %6.1f us CPU/SET  target %6.1f us"
                      % (r + 1, "with link" if link else "without", rps, s_us, d_us), flush=True)
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
        for k in (False, True):
            print("median %-12s %9.0f SET/s  source %6.1f us CPU/SET  target %6.1f us"
                  % ("with link" if k else "without", *med[k]))
        print("ratio with/without: throughput %.3f, source CPU per SET %.3f"
              % (med[True][0] / med[False][0], med[True][1] / med[False][1]))
    finally:
        errors = src.stop_all() + plain.stop_all() + dst.stop_all()
        shutil.rmtree(root, ignore_errors=True)
        if errors:
            print("\n".join(errors))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Row (e) of bench-partitions for two or more builds in the same rounds: SET throughput and
server CPU per SET (three nodes, /proc) of a 3-node cluster with 1 partition (to its leader)
and with AB_PARTS partitions (redis-benchmark --cluster), at -P 1 and -P 16, the builds' and
the counts' order reversed every other round. Uses bench/partitions.py's clusters and runs.

    bench/ab_partitions.py --bins main=/abs/halyard.main,new=/abs/halyard [--rounds 3]
                           [--n1 150000] [--n16 1200000] [--parts 16]"""
import argparse, os, statistics, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import partitions as P  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bins", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n1", type=int, default=150000)
    ap.add_argument("--n16", type=int, default=1200000)
    ap.add_argument("--parts", type=int, default=16)
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bins.split(",")]
    work = tempfile.mkdtemp(prefix="ab-partitions-")
    res = {}
    for r in range(a.rounds):
        for name, binary in (bins if r % 2 == 0 else bins[::-1]):
            for parts in ([1, a.parts] if r % 2 == 0 else [a.parts, 1]):
                c = P.Cluster(binary, work, parts)
                try:
                    for pipe in (1, 16):
                        c.wait_led([0, 1, 2])
                        got = P.bench_set(c, "leader" if parts == 1 else "cluster", pipe,
                                          a.n1 if pipe == 1 else a.n16)
                        c.check_alive()
                        if got:
                            res.setdefault((name, parts, pipe), []).append(got)
                            print("round %d %-8s %3d partition(s) -P %-2d %9.0f SET/s %6.2f us CPU/SET" % (
                                r + 1, name, parts, pipe, got[0], got[1]), flush=True)
                finally:
                    c.stop()
    print("medians (SET/s, CPU us per SET over the three nodes):")
    for name, _ in bins:
        for pipe in (1, 16):
            one, many = res.get((name, 1, pipe), []), res.get((name, a.parts, pipe), [])
            if not one or not many:
                print("%-8s -P %-2d: a count had no completed run" % (name, pipe))
                continue
            r1, rn = statistics.median(x[0] for x in one), statistics.median(x[0] for x in many)
            c1, cn = statistics.median(x[1] for x in one), statistics.median(x[1] for x in many)
            print("%-8s -P %-2d 1 partition %9.0f %6.2f | %d partitions %9.0f %6.2f | row (e): %.2fx, CPU %.2fx" % (
                name, pipe, r1, c1, a.parts, rn, cn, rn / r1, cn / c1), flush=True)


if __name__ == "__main__":
    main()

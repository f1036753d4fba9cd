#!/usr/bin/env python3
"""Failover time of a 3-node halyard cluster on loopback (`make bench-failover`,
`make bench-cluster`).

Each round starts from a settled cluster, kills the leader with SIGKILL, and measures the
time until the first write is acknowledged through a surviving member: from the kill on, a new
write attempt (its own connection, 1 s timeout) starts every 5 ms, alternating between the two
survivors, without waiting for earlier attempts, and the round's time is the earliest
acknowledgement. (Attempts made one after another with a short timeout would measure in steps
of that timeout, since a write sent before the election can hang until it ends.) Prints every
round, then the median, the p99 (nearest rank: with fewer than 100 rounds that is the worst
round) and the worst, each saying how many rounds it comes from. A benchmark, not a test;
but a round in which no write was acknowledged within 30 s, or the cluster did not start, is
reported as failed (never left out silently), and then the exit status is 1.

    bench/failover.py /abs/path/to/halyard [rounds] [--out FILE]

The binary measured is the one named on the command line (HALYARD_BIN is set from it, and an
exported HALYARD_BIN is overridden). --out FILE writes one line per round, for
bench/cluster.sh: the time in milliseconds, or "failed".
"""

import argparse
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from conftest import RawConn  # noqa: E402

ROUND_DEADLINE_S = 30


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
    """The nearest-rank p-th percentile (0 < p <= 100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def try_write(port, key, timeout_s):
    try:
        with RawConn(port, timeout=timeout_s) as c:
            return c.cmd("SET", key, "x") == "OK"
    except OSError:
        return False


def first_ack(attempt, targets, t0, interval_s=0.005, attempt_timeout_s=1.0, deadline_s=ROUND_DEADLINE_S):
    """Starts attempt(target, key, timeout_s) every interval_s, cycling through targets, each in
    its own thread, until one returns True; returns the seconds from t0 to the earliest such
    return. Also used by bench/etcd_bench.py, so both systems are timed the same way."""
    acks, lock, done = [], threading.Lock(), threading.Event()

    def one(target, key):
        if attempt(target, key, attempt_timeout_s):
            t = time.monotonic()
            with lock:
                acks.append(t)
            done.set()

    threads, k = [], 0
    while not done.is_set():
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError("no write acknowledged within %d s of the kill" % deadline_s)
        th = threading.Thread(target=one, args=(targets[k % len(targets)], "after%d" % k), daemon=True)
        th.start()
        threads.append(th)
        k += 1
        done.wait(interval_s)
    for th in threads:
        th.join(attempt_timeout_s + 1)
    return min(acks) - t0


def one_round(tmp):
    cl = Cluster(tmp, 3)
    cl.start_all()
    try:
        li = cl.leader()
        survivors = [cl.ports[j] for j in range(3) if j != li]
        assert try_write(cl.ports[li], "warm", 1.0)
        t0 = time.monotonic()
        cl.kill(li)
        return first_ack(try_write, survivors, t0)
    finally:
        cl.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("halyard", help="absolute path to the halyard binary")
    ap.add_argument("rounds", nargs="?", type=int, default=10)
    ap.add_argument("--out", help="write the round times (ms), one a line, to this file")
    args = ap.parse_args()
    binary = os.path.abspath(args.halyard)
    if not os.access(binary, os.X_OK):
        sys.exit("failover: %s is not an executable" % binary)
    # The binary named on the command line is the one measured, whatever the environment says
    # (tests/integration/cluster.py reads HALYARD_BIN).
    os.environ["HALYARD_BIN"] = binary
    print("failover: measuring %s" % binary, flush=True)
    # SIGTERM (bench/cluster.sh stopping us) unwinds through the finally that stops the cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds = []  # milliseconds, or None for a failed round
    with tempfile.TemporaryDirectory(prefix="halyard-failover.") as root:
        tmp = _Tmp(root)
        for i in range(args.rounds):
            try:
                t = one_round(tmp) * 1000
            except (RuntimeError, AssertionError, OSError) as e:
                rounds.append(None)
                print("round %2d: FAILED: %s" % (i + 1, str(e).splitlines()[0] if str(e) else repr(e)), flush=True)
                continue
            rounds.append(t)
            print("round %2d: writes resumed %.0f ms after kill -9 of the leader" % (i + 1, t), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("".join("failed\n" if t is None else "%.3f\n" % t for t in rounds))
    times = [t for t in rounds if t is not None]
    failed = len(rounds) - len(times)
    note = "" if not failed else " (%d of %d rounds FAILED)" % (failed, len(rounds))
    if times:
        print("failover (3 nodes, election-timeout-ms 300): median %.0f ms, p99 %.0f ms, worst %.0f ms over %d rounds%s"
              % (statistics.median(times), percentile(times, 99), max(times), len(times), note))
    else:
        print("failover (3 nodes, election-timeout-ms 300): every round FAILED (%d)" % len(rounds))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

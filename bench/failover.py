#!/usr/bin/env python3
"""Failover time of a 3-node halyard cluster on loopback (`make bench-failover`).

Each round starts from a settled cluster, kills the leader with SIGKILL, and measures the
time until a write is acknowledged again through a surviving member (a client retries every
5 ms against both survivors). Prints every round, then the median and the worst. A benchmark,
not a test: nothing here passes or fails.

    bench/failover.py /abs/path/to/halyard [rounds]
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from conftest import RawConn  # noqa: E402


class _Tmp:
    """Enough of pytest's tmp_path_factory for Cluster."""

    def __init__(self, root):
        self.root, self.n = root, 0

    def mktemp(self, name):
        self.n += 1
        path = os.path.join(self.root, "%s%d" % (name, self.n))
        os.makedirs(path)
        return path


def try_write(port, key):
    try:
        with RawConn(port, timeout=0.2) as c:
            return c.cmd("SET", key, "x") == "OK"
    except OSError:
        return False


def one_round(tmp, i):
    cl = Cluster(tmp, 3)
    cl.start_all()
    try:
        li = cl.leader()
        survivors = [cl.ports[j] for j in range(3) if j != li]
        assert try_write(cl.ports[li], "warm")
        t0 = time.monotonic()
        cl.kill(li)
        while True:
            if any(try_write(p, "after%d" % i) for p in survivors):
                return time.monotonic() - t0
            if time.monotonic() - t0 > 30:
                raise RuntimeError("no failover within 30 s")
            time.sleep(0.005)
    finally:
        cl.stop_all()


def main():
    os.environ.setdefault("HALYARD_BIN", os.path.abspath(sys.argv[1]))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with tempfile.TemporaryDirectory() as root:
        tmp = _Tmp(root)
        times = []
        for i in range(rounds):
            t = one_round(tmp, i)
            times.append(t)
            print("round %2d: writes resumed %.0f ms after kill -9 of the leader" % (i + 1, t * 1000))
    print("failover (3 nodes, election-timeout-ms 300): median %.0f ms, worst %.0f ms over %d rounds"
          % (statistics.median(times) * 1000, max(times) * 1000, rounds))


if __name__ == "__main__":
    main()

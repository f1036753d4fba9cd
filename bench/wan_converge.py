#!/usr/bin/env python3
"""`make bench-wan-converge`: how long two active-active clusters take to converge after a cut
with writes on both sides (docs/wan.md "Active-active").

    bench/wan_converge.py /abs/path/to/halyard

Two clusters of 1 node and 2 partitions on 127.0.0.1, linked both ways (MODE active-active)
through the TCP proxies of tests/integration/test_wan_active.py. The links are cut for
BENCH_WAN_CUT_S seconds (default 60) while a writer on each side sets random keys among
BENCH_WAN_KEYS (default 10,000; both sides write the same keys) at BENCH_WAN_RATE per second
each (default 500), every key under the merge policy BENCH_WAN_POLICY (default LATEST_UPDATE)
on both links. Then writes stop and the links heal: the figure is the time from the heal
to both clusters holding the same content with both links' lag at 0, and the conflicts the
merge decided.

Not a pass/fail test. The machine it runs on may be shared: figures move with its load.
Every process is stopped by PID and every wait has a deadline.
"""

import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from cluster import Cluster  # noqa: E402
from failover import _Tmp  # noqa: E402  (bench/failover.py: same scaffolding)
from conftest import RawConn, wait_for  # noqa: E402
from test_wan_active import conflict_totals, content, link, status, wait_versions  # noqa: E402
from wan_pairs import CutProxy  # noqa: E402

CUT_S = float(os.environ.get("BENCH_WAN_CUT_S", "60"))
KEYS = int(os.environ.get("BENCH_WAN_KEYS", "10000"))
RATE = int(os.environ.get("BENCH_WAN_RATE", "500"))
POLICY = os.environ.get("BENCH_WAN_POLICY", "LATEST_UPDATE")


def write_for(c, password, seconds, seed, counts, i):
    rnd = random.Random(seed)
    end = time.monotonic() + seconds
    n = 0
    with RawConn(c.ports[0], timeout=10.0) as r:
        r.cmd("AUTH", password)
        start = time.monotonic()
        while time.monotonic() < end:
            r.cmd("SET", "k:%d" % rnd.randrange(KEYS), "%d-%d" % (seed, n))
            n += 1
            ahead = n / RATE - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not waiting for a condition
    counts[i] = n


def main():
    os.environ["HALYARD_BIN"] = sys.argv[1]
    root = tempfile.mkdtemp(prefix="bench-wan-converge-")
    dirs = _Tmp(root)
    east = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "east", "requirepass": "pe"})
    west = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "west", "requirepass": "pw"})
    proxies = []
    try:
        east.start_all()
        west.start_all()
        to_west, to_east = CutProxy(west.ports[0] + 10000), CutProxy(east.ports[0] + 10000)  # peer ports
        proxies += [to_west, to_east]
        rules = [("*", POLICY)] if POLICY != "LATEST_UPDATE" else []
        link(east, to_west, rules)
        link(west, to_east, rules)
        wait_versions(east)
        wait_versions(west)
        to_west.cut()
        to_east.cut()
        counts = [0, 0]
        ts = [threading.Thread(target=write_for, args=(east, "pe", CUT_S, 1, counts, 0)),
              threading.Thread(target=write_for, args=(west, "pw", CUT_S, 2, counts, 1))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=CUT_S + 60)
        lag = [sum(p["lag_entries"] for p in status(c)["links"][0]["partitions"])
               for c in (east, west)]
        healed = time.monotonic()
        to_west.heal()
        to_east.heal()
        done = {}

        def same():
            if any(p["lag_entries"] for c in (east, west)
                   for p in status(c)["links"][0]["partitions"]):
                return False
            if "lag0" not in done:
                done["lag0"] = time.monotonic() - healed
            return content(east) == content(west)

        wait_for(same, 600, "both clusters to converge", interval=0.05)
        took = time.monotonic() - healed
        print("cut %.0f s, writes east %d west %d (%.0f/s each asked), keys %d, policy %s" %
              (CUT_S, counts[0], counts[1], RATE, KEYS, POLICY))
        print("changes held at the heal: east %d, west %d" % (lag[0], lag[1]))
        print("from the heal: both links at lag 0 after %.2f s; same content confirmed "
              "after %.2f s (the full comparison of %d keys included)" %
              (done["lag0"], took, len(content(east))))
        for name, c in (("east", east), ("west", west)):
            print("conflicts decided on %s: %s" % (name, conflict_totals(c)))
    finally:
        for p in proxies:
            p.close()
        errors = east.stop_all() + west.stop_all()
        shutil.rmtree(root, ignore_errors=True)
        if errors:
            print("\n".join(errors))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`make bench-wan-resync`: how long a WAN link added to a cluster holding keys takes to copy
them to its target (docs/wan.md "Resync").

    bench/wan_resync.py /abs/path/to/halyard

A source of 1 node and 4 partitions holding BENCH_RESYNC_KEYS keys (default 100,000: SETs of
a 16-byte key and a 32-byte value), a target of 1 node and 2 partitions, both on 127.0.0.1.
The figure is the time from HALYARD WAN ADD to every source partition reporting its resync done
(WAN STATUS JSON: resyncs 1, idle, lag 0), and the keys' states and bytes sent; then the
target's key count is checked against the source's. BENCH_RESYNC_RUNS runs (default 3), each
with fresh clusters; the median is printed.

Not a pass/fail test. The machine it runs on may be shared: figures move with its load.
Every process is stopped by PID and every wait has a deadline.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from cluster import Cluster, SECRET  # noqa: E402
from failover import _Tmp  # noqa: E402  (bench/failover.py: same scaffolding)
from conftest import RawConn, wait_for  # noqa: E402

KEYS = int(os.environ.get("BENCH_RESYNC_KEYS", "100000"))
RUNS = int(os.environ.get("BENCH_RESYNC_RUNS", "3"))
PARTS = 4


def load(port):
    with RawConn(port, timeout=60.0) as c:
        step = 1000
        for at in range(0, KEYS, step):
            c.send(b"".join(RawConn.encode("SET", "key:%011d" % i, "v" * 32)
                            for i in range(at, min(at + step, KEYS))))
            for _ in range(at, min(at + step, KEYS)):
                r = c.read()
                assert r == "OK", r


def parts(port):
    with RawConn(port, timeout=10.0) as c:
        st = json.loads(c.cmd("HALYARD", "WAN", "STATUS", "JSON").decode())
    return st["links"][0]["partitions"] if st["links"] else []


def one_run(root, binary):
    os.environ["HALYARD_BIN"] = binary
    dirs = _Tmp(tempfile.mkdtemp(dir=root))
    dst = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "west", "requirepass": "pw"})
    src = Cluster(dirs, 1, {"partitions": PARTS, "cluster-name": "east"})
    try:
        dst.start_all()
        src.start_all()
        load(src.ports[0])
        with RawConn(src.ports[0], timeout=10.0) as c:
            wait_for(lambda: c.cmd("HALYARD", "WAN", "ADD", "dr", "127.0.0.1:%d" % (dst.ports[0] + 10000),
                                   "SECRET", SECRET) == "OK", 20, "the link added")
        added = time.monotonic()

        def done():
            ps = parts(src.ports[0])
            return len(ps) == PARTS and all(p["resyncs"] >= 1 and p["state"] == "idle" and
                                            p["lag_entries"] == 0 for p in ps)

        wait_for(done, 600, "every partition's resync", interval=0.02)
        took = time.monotonic() - added
        ps = parts(src.ports[0])
        keys = sum(p["resync_keys"] for p in ps)
        sent = sum(p["resync_bytes"] for p in ps)
        with RawConn(dst.ports[0], timeout=10.0) as c:
            c.cmd("AUTH", "pw")
            held = c.cmd("DBSIZE")
        assert held == KEYS, (held, KEYS)
        return took, keys, sent
    finally:
        errors = src.stop_all() + dst.stop_all()
        if errors:
            print("\n".join(errors))


def main():
    binary = sys.argv[1]
    root = tempfile.mkdtemp(prefix="bench-wan-resync-")
    try:
        times = []
        for i in range(RUNS):
            took, keys, sent = one_run(root, binary)
            times.append(took)
            print("run %d: %d keys' states (%.1f MB of batches) in %.2f s (%.0f keys/s)" %
                  (i + 1, keys, sent / 1e6, took, keys / took))
        print("median over %d runs: %.2f s for %d keys" % (RUNS, statistics.median(times), KEYS))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`make bench-wan`: replication lag of a WAN link (docs/wan.md) at a steady write load.

    bench/wan_lag.py /abs/path/to/halyard

A source cluster of 3 nodes and 4 partitions and a target of 1 node and 2 partitions, on
127.0.0.1, a link between them. A loader writes SETs to the source at BENCH_WAN_RATE per
second (default 1000, on 8 connections spread over the source's nodes) for the whole run;
meanwhile a prober writes BENCH_WAN_PROBES keys (default 300), one every 20 ms or so, and for
each measures the time
from the source's acknowledgement to the key being readable on the target (polled every
millisecond): the end-to-end lag, p50 and p99 (nearest rank). The source's own view, the
largest halyard_wan_lag_ms any leader reports, is sampled alongside.

Not a pass/fail test. The machine it runs on may be shared: figures move with its load.
Every process is stopped by PID and every wait has a deadline.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from cluster import Cluster, SECRET  # noqa: E402
from failover import _Tmp, percentile  # noqa: E402  (bench/failover.py: same scaffolding)
from conftest import RawConn, wait_for  # noqa: E402

RATE = int(os.environ.get("BENCH_WAN_RATE", "1000"))
PROBES = int(os.environ.get("BENCH_WAN_PROBES", "300"))
LOADERS = 8


def main():
    os.environ["HALYARD_BIN"] = sys.argv[1]
    root = tempfile.mkdtemp(prefix="bench-wan-")
    dirs = _Tmp(root)
    dst = Cluster(dirs, 1, {"partitions": 2, "cluster-name": "west", "requirepass": "pw"})
    src = Cluster(dirs, 3, {"partitions": 4, "cluster-name": "east"})
    stop = threading.Event()
    try:
        dst.start_all()
        src.start_all()

        def added():
            with RawConn(src.ports[0], timeout=5.0) as c:
                r = c.cmd("HALYARD", "WAN", "ADD", "dr", "127.0.0.1:%d" % (dst.ports[0] + 10000), "SECRET", SECRET)
            return r == "OK"

        wait_for(added, 30, "the link to be added")
        done = {"n": 0}

        def loader(k):
            # LOADERS connections, each to a source node in turn, each RATE / LOADERS a second.
            with RawConn(src.ports[k % 3], timeout=5.0) as c:
                start = time.monotonic()
                i = 0
                while not stop.is_set():
                    c.cmd("SET", "load%d:%d" % (k, i % 100), i)
                    i += 1
                    done["n"] += 1
                    ahead = i / (RATE / LOADERS) - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)  # pacing the load, not waiting for a condition

        src_lag = []

        def sampler():
            while not stop.is_set():
                worst = 0
                for p in src.ports:
                    with RawConn(p, timeout=5.0) as c:
                        st = json.loads(c.cmd("HALYARD", "WAN", "STATUS", "JSON"))
                    for link in st["links"]:
                        for part in link["partitions"]:
                            worst = max(worst, part["lag_ms"])
                src_lag.append(worst)
                stop.wait(0.1)

        threads = [threading.Thread(target=loader, args=(k,), daemon=True) for k in range(LOADERS)]
        threads.append(threading.Thread(target=sampler, daemon=True))
        began = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1.0)  # the load's first second, before probing
        lags = []
        with RawConn(src.ports[0], timeout=5.0) as w, RawConn(dst.ports[0], timeout=5.0) as r:
            r.cmd("AUTH", "pw")
            for i in range(PROBES):
                key = "probe%d" % i
                assert w.cmd("SET", key, "x") == "OK"
                t0 = time.monotonic()
                deadline = t0 + 10
                while r.cmd("EXISTS", key) != 1:
                    assert time.monotonic() < deadline, "probe %d never reached the target" % i
                    time.sleep(0.001)
                lags.append((time.monotonic() - t0) * 1000)
                stop.wait(0.02)
        stop.set()
        took = time.monotonic() - began
        for t in threads:
            t.join(10)
        print("load: %d SETs in %.1f s (%.0f a second; asked %d) on %d connections"
              % (done["n"], took, done["n"] / took, RATE, LOADERS))
        print("end-to-end lag (source ack -> readable on the target), %d probes: p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms" % (len(lags), percentile(lags, 50), percentile(lags, 99), max(lags)))
        if src_lag:
            print("source's view (largest halyard_wan_lag_ms of any partition, sampled every "
                  "100 ms): p50 %d ms, p99 %d ms" % (percentile(src_lag, 50), percentile(src_lag, 99)))
    finally:
        stop.set()
        for c in (src, dst):
            for s in c.nodes:
                if s is not None and s.alive():
                    s.send_signal(signal.SIGKILL)
                    s.wait_exit()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

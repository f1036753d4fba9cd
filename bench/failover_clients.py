#!/usr/bin/env python3
"""Client-visible failover of a 3-node halyard cluster, for clients of the followers and of the
leader (`make bench-failover`; issue 9).

Each round starts from a settled cluster with six plain clients writing SETs in a loop on their
own connections: two on each follower (proxied to the leader, as behind a TCP load balancer)
and two on the leader. The leader is killed with SIGKILL. A client of the leader loses its
connection and reconnects to a survivor, as any client with two addresses would; a client of a
follower keeps its connection. Each client's failover time is the longest gap between two of
its acknowledged writes around the kill. The round ends when every client has an
acknowledgement after the kill (or after 30 s); the killed node is restarted, and the next
round waits until it follows a leader again.

Prints every round, then for each kind of client the median and p99 (nearest rank) over all
rounds' clients, the worst, and how many writes were answered -UNKNOWN or with another error.
A benchmark, not a test: nothing here passes or fails.

    bench/failover_clients.py /abs/path/to/halyard [rounds] [--out FILE]

With --out, the two summary lines are also written to FILE (bench/cluster.sh prints them in
its part (c)).
"""

import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from cluster import Cluster, info  # noqa: E402
from conftest import RawConn, RespError  # noqa: E402
from failover import _Tmp, percentile  # noqa: E402  (bench/failover.py: same scaffolding)

ROUND_DEADLINE_S = 30


class Writer(threading.Thread):
    def __init__(self, ports, first, stop, name):
        super().__init__(daemon=True)
        self.ports, self.port, self.stop, self.name = ports, first, stop, name
        self.acks, self.unknown, self.errors = [], 0, 0

    def run(self):
        i, conn = 0, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=10)
                i += 1
                r = conn.cmd("SET", "%s:%d" % (self.name, i), "x")
                if r == "OK":
                    self.acks.append(time.monotonic())
                elif isinstance(r, RespError) and r.startswith("UNKNOWN"):
                    self.unknown += 1
                else:
                    self.errors += 1
                    if os.environ.get("BENCH_SHOW_ERRORS") and self.errors <= 3:
                        print("%s: %s" % (self.name, r), flush=True)
            except OSError:
                # The node is gone: go to another address, as a client with several would.
                if conn is not None:
                    conn.close()
                conn = None
                self.port = random.choice([p for p in self.ports if p != self.port])
                self.stop.wait(0.005)
        if conn is not None:
            conn.close()

    def gap_around(self, t):
        """The longest gap between consecutive acks that spans moment t (None: no ack after)."""
        before = [a for a in self.acks if a <= t]
        after = [a for a in self.acks if a > t]
        if not before or not after:
            return None
        seq = [before[-1]] + after
        return max(b - a for a, b in zip(seq, seq[1:]) if a <= t + 5)


def one_round(c, rnd):
    li = c.leader()
    ports = [p for i, p in enumerate(c.ports)]
    stop = threading.Event()
    writers = []
    for i, p in enumerate(c.ports):
        for k in range(2):
            w = Writer(ports, p, stop, "r%d-%s-%d" % (rnd, "L" if i == li else "F%d" % i, k))
            w.kind = "leader" if i == li else "follower"
            writers.append(w)
    for w in writers:
        w.start()
    end = time.monotonic() + 10
    while time.monotonic() < end and any(len(w.acks) < 20 for w in writers):
        stop.wait(0.01)
    c.kill(li)
    t_kill = time.monotonic()
    end = t_kill + ROUND_DEADLINE_S
    while time.monotonic() < end and any(not [a for a in w.acks if a > t_kill] for w in writers):
        stop.wait(0.01)
    stop.wait(0.2)   # a few acks after the first, so the gap is closed on both sides
    stop.set()
    for w in writers:
        w.join(15)
    c.start(li)
    # The next round starts from a whole cluster: the restarted node follows a leader again
    # (until then the survivors of the next kill would be a minority, answering -NOQUORUM).
    end = time.monotonic() + ROUND_DEADLINE_S
    while time.monotonic() < end:
        try:
            r = info(c.ports[li])
            if r.get("raft_role") == "follower" and r.get("raft_leader"):
                break
        except OSError:
            pass
        stop.wait(0.02)
    out = []
    for w in writers:
        g = w.gap_around(t_kill)
        out.append((w.kind, None if g is None else g * 1000.0, w.unknown, w.errors))
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    args = sys.argv[1:]
    out_path = None
    if "--out" in args:
        k = args.index("--out")
        out_path = args[k + 1]
        del args[k:k + 2]
    os.environ["HALYARD_BIN"] = args[0]
    rounds = int(args[1]) if len(args) > 1 else 10
    tmp = tempfile.mkdtemp(prefix="hy-failover-clients-")
    c = Cluster(_Tmp(tmp), 3)
    c.start_all()
    results = {"follower": [], "leader": []}
    missing = {"follower": 0, "leader": 0}
    unknown = {"follower": 0, "leader": 0}
    errors = {"follower": 0, "leader": 0}
    try:
        for rnd in range(rounds):
            res = one_round(c, rnd)
            line = []
            for kind, gap, unk, err in res:
                if gap is None:
                    missing[kind] += 1
                else:
                    results[kind].append(gap)
                unknown[kind] += unk
                errors[kind] += err
                line.append("%s %s" % (kind[0], "none" if gap is None else "%.0f" % gap))
            print("round %d: longest gap per client (ms): %s" % (rnd + 1, ", ".join(line)), flush=True)
    finally:
        for e in c.stop_all():
            print("stop: %s" % e[:200])
    summary = []
    for kind in ("follower", "leader"):
        v = results[kind]
        if v:
            summary.append("clients of the %s: %d client-rounds, longest gap p50 %.0f ms, p99 %.0f "
                           "ms, worst %.0f ms; %d without an ack after the kill; %d -UNKNOWN, %d "
                           "other errors"
                           % (kind, len(v), statistics.median(v), percentile(v, 99), max(v),
                              missing[kind], unknown[kind], errors[kind]))
        else:
            summary.append("clients of the %s: no measurement (%d without an ack after the kill)"
                           % (kind, missing[kind]))
    for line in summary:
        print(line)
    if out_path:
        with open(out_path, "w") as f:
            f.write("\n".join(summary) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""halyard against a 3-member etcd on loopback, same Python tool for both (`make bench-cluster`
when the `etcd` binary is installed; docs/architecture.md "Testing").

Two measurements:

  put throughput  A 3-node halyard cluster and a 3-member etcd cluster run side by side. The same
                  N threads write for D seconds, each over one keep-alive connection to the
                  leader: redis-py SET key:R xxx to halyard, and POST /v3/kv/put (etcd's v3 JSON
                  gateway, base64 key and value) to etcd, R uniform in [0, 100000). Rounds
                  alternate which system goes first; medians of the acknowledged puts per second.
  failover        Timed exactly as bench/failover.py times halyard (its first_ack): each round
                  starts a fresh etcd cluster, kills its leader with SIGKILL, and measures the
                  time until the first put is acknowledged through a survivor (a new attempt
                  every 5 ms, alternating between the survivors, each on its own connection).

Election timing is matched, so the failover figures compare the implementations rather than
their defaults: halyard's default election-timeout-ms 300 draws each timeout from [150, 300] ms
with 50 ms heartbeats; etcd draws from [T, 2T) for --election-timeout T, so it runs with
--election-timeout 150 --heartbeat-interval 30 (etcd wants T >= 5 heartbeats; its defaults are
1000/100). Both fsync every acknowledged write. A benchmark, not a test; but both systems get
the same treatment and every figure says what it comes from: puts that failed are counted
and reported for each system (a throughput round counts only acknowledged puts), and a
failover round in which no put was acknowledged within 30 s is reported as failed, never
left out silently.

    bench/etcd_bench.py /abs/path/to/halyard [--etcd PATH] [--threads N] [--seconds D]
                        [--rounds R] [--failover-rounds F] [--out FILE]

The halyard measured is the binary named on the command line (an exported HALYARD_BIN is
overridden). --out FILE writes "name value" lines for bench/cluster.sh: put rates (medians),
put_<system>_rounds, put_<system>_failed (failed puts in all rounds), failover times in ms,
failover_etcd_rounds and failover_etcd_failed.
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

import redis  # noqa: E402
from cluster import Cluster  # noqa: E402
from failover import _Tmp, first_ack, percentile  # noqa: E402

KEY_RANGE = 100000
START_DEADLINE_S = 20


def free_ports(n):
    """n distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---- etcd ----------------------------------------------------------------------------------


def etcd_call(port, path, body, timeout, conn=None):
    """POSTs a JSON body to etcd's v3 gateway; returns the decoded reply (raises on failure)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise OSError("etcd %s answered %d: %r" % (path, r.status, data[:200]))
        return json.loads(data)
    finally:
        if conn is None:
            c.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def put_body(key, value):
    return {"key": b64(key), "value": b64(value)}


class Etcd:
    """A 3-member etcd cluster on 127.0.0.1, each member stopped by PID."""

    def __init__(self, binary, root, election_ms, heartbeat_ms, n=3):
        self.dir = tempfile.mkdtemp(prefix="etcd.", dir=root)
        ports = free_ports(2 * n)
        self.client_ports, self.peer_ports = ports[:n], ports[n:]
        self.names = ["e%d" % (i + 1) for i in range(n)]
        initial = ",".join("%s=http://127.0.0.1:%d" % (nm, p) for nm, p in zip(self.names, self.peer_ports))
        self.procs = []
        for i, nm in enumerate(self.names):
            cu, pu = "http://127.0.0.1:%d" % self.client_ports[i], "http://127.0.0.1:%d" % self.peer_ports[i]
            argv = [binary, "--name", nm, "--data-dir", os.path.join(self.dir, nm),
                    "--listen-client-urls", cu, "--advertise-client-urls", cu,
                    "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", os.path.basename(self.dir),
                    "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms),
                    "--logger", "zap", "--log-level", "error"]
            log = open(os.path.join(self.dir, nm + ".log"), "wb")
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
            log.close()
        try:
            self.leader()
        except BaseException:
            self.stop()
            raise

    def log_tail(self, i, n=2000):
        with open(os.path.join(self.dir, self.names[i] + ".log"), "rb") as f:
            return f.read()[-n:].decode(errors="replace")

    def leader(self, exclude=(), deadline_s=START_DEADLINE_S):
        """Index of the member that says it leads (waits for one)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for i, p in enumerate(self.procs):
                if i in exclude:
                    continue
                if p.poll() is not None:
                    raise RuntimeError("etcd %s exited (%s):\n%s" % (self.names[i], p.returncode, self.log_tail(i)))
                try:
                    st = etcd_call(self.client_ports[i], "/v3/maintenance/status", {}, 1.0)
                except (OSError, ValueError, http.client.HTTPException):
                    continue
                if st.get("leader") and st["leader"] == st.get("header", {}).get("member_id"):
                    return i
            time.sleep(0.02)
        raise RuntimeError("no etcd leader within %d s" % deadline_s)

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self, sig=signal.SIGTERM):
        """Stops every member by PID. Failover rounds pass SIGKILL: a member whose peer was
        killed spends some 5 s of a graceful stop trying to hand leadership to it."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- put throughput ------------------------------------------------------------------------


def run_threads(make_put, threads, seconds):
    """Runs `threads` workers for `seconds`; each calls put(key) in a loop with its own
    connection. Returns (acknowledged puts per second, failed puts, first error)."""
    ok, failed, first_err = [0] * threads, [0] * threads, []
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(w):
        rng = random.Random(w)
        put = make_put()
        start.wait()
        n = f = 0
        while time.monotonic() < stop_at[0]:
            try:
                put("key:%012d" % rng.randrange(KEY_RANGE))
                n += 1
            except Exception as e:  # noqa: BLE001 - counted and reported, not fatal
                f += 1
                if not first_err:
                    first_err.append(repr(e))
                put = make_put()
        ok[w], failed[w] = n, f

    ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in ts:
        t.start()
    stop_at[0] = time.monotonic() + seconds + 10  # until the barrier releases
    start.wait()
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    for t in ts:
        t.join(seconds + 30)
    elapsed = time.monotonic() - t0
    return sum(ok) / elapsed, sum(failed), (first_err[0] if first_err else "")


def halyard_putter(port):
    def make():
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)

        def put(key):
            if r.set(key, "xxx") is not True:
                raise RuntimeError("SET did not answer OK")

        return put

    return make


def etcd_putter(port):
    def make():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def put(key):
            etcd_call(port, "/v3/kv/put", put_body(key, "xxx"), 10, conn)

        return put

    return make


def halyard_leader_port(cl):
    return cl.ports[cl.leader()]


def throughput(args, root, results):
    cl = Cluster(_Tmp(tempfile.mkdtemp(prefix="halyard.", dir=root)), 3, extra={"log-level": "warn"})
    cl.start_all()
    et = None
    try:
        et = Etcd(args.etcd, root, args.etcd_election_ms, args.etcd_heartbeat_ms)
        rates = {"halyard": [], "etcd": []}
        failed_puts = {"halyard": 0, "etcd": 0}
        for rnd in range(args.rounds):
            order = ("etcd", "halyard") if rnd % 2 == 0 else ("halyard", "etcd")
            for who in order:
                if who == "halyard":
                    port = halyard_leader_port(cl)
                    rate, failed, err = run_threads(halyard_putter(port), args.threads, args.seconds)
                else:
                    port = et.client_ports[et.leader()]
                    rate, failed, err = run_threads(etcd_putter(port), args.threads, args.seconds)
                rates[who].append(rate)
                failed_puts[who] += failed
                note = "" if not failed else " (%d failed puts, first: %s)" % (failed, err)
                print("round %d/%d: %-7s %8.0f puts/s%s" % (rnd + 1, args.rounds, who, rate, note), flush=True)
        h, e = statistics.median(rates["halyard"]), statistics.median(rates["etcd"])
        results["put_halyard"], results["put_etcd"] = h, e
        for who in ("halyard", "etcd"):
            results["put_%s_rounds" % who] = len(rates[who])
            results["put_%s_failed" % who] = failed_puts[who]
        print("put throughput (%d threads, %d s, medians of %d rounds each): halyard %.0f/s, etcd %.0f/s, "
              "halyard/etcd %s; failed puts: halyard %d, etcd %d"
              % (args.threads, args.seconds, args.rounds, h, e, "%.2f" % (h / e) if e > 0 else "n/a",
                 failed_puts["halyard"], failed_puts["etcd"]), flush=True)
    finally:
        if et is not None:
            et.stop()
        cl.stop_all()


# ---- failover ------------------------------------------------------------------------------


def try_put(port, key, timeout_s):
    try:
        etcd_call(port, "/v3/kv/put", put_body(key, "x"), timeout_s)
        return True
    except (OSError, ValueError, http.client.HTTPException):
        return False


def failover_round(args, root):
    et = Etcd(args.etcd, root, args.etcd_election_ms, args.etcd_heartbeat_ms)
    try:
        li = et.leader()
        survivors = [et.client_ports[j] for j in range(3) if j != li]
        if not try_put(et.client_ports[li], "warm", 1.0):
            raise RuntimeError("the etcd leader did not take a put before the kill")
        t0 = time.monotonic()
        et.kill(li)
        return first_ack(try_put, survivors, t0) * 1000
    finally:
        et.stop(signal.SIGKILL)


def failover(args, root, results):
    """etcd's failover rounds; a round that fails (no leader, no put acknowledged within the
    deadline) is counted and reported, as bench/failover.py does for halyard."""
    times, failed = [], 0
    for i in range(args.failover_rounds):
        try:
            t = failover_round(args, root)
        except (RuntimeError, OSError) as e:
            failed += 1
            print("etcd round %2d: FAILED: %s" % (i + 1, str(e).splitlines()[0] if str(e) else repr(e)), flush=True)
            continue
        times.append(t)
        print("etcd round %2d: puts resumed %.0f ms after kill -9 of the leader" % (i + 1, t), flush=True)
    results["failover_etcd_rounds"] = len(times)
    results["failover_etcd_failed"] = failed
    note = "" if not failed else " (%d of %d rounds FAILED)" % (failed, args.failover_rounds)
    if not times:
        print("etcd failover: every round FAILED (%d)" % failed, flush=True)
        return
    results["failover_etcd_p50"] = statistics.median(times)
    results["failover_etcd_p99"] = percentile(times, 99)
    print("etcd failover (3 members, election-timeout %d ms, heartbeat %d ms): median %.0f ms, p99 %.0f ms, "
          "worst %.0f ms over %d rounds%s" % (args.etcd_election_ms, args.etcd_heartbeat_ms, results["failover_etcd_p50"],
                                              results["failover_etcd_p99"], max(times), len(times), note), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("halyard", help="absolute path to the halyard binary")
    ap.add_argument("--etcd", default=shutil.which("etcd"), help="the etcd binary (default: from PATH)")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--failover-rounds", type=int, default=20)
    ap.add_argument("--etcd-election-ms", type=int, default=150)
    ap.add_argument("--etcd-heartbeat-ms", type=int, default=30)
    ap.add_argument("--out", help='write "name value" result lines to this file')
    args = ap.parse_args()
    if not args.etcd:
        sys.exit("etcd_bench: no etcd binary (Debian package etcd-server)")
    binary = os.path.abspath(args.halyard)
    if not os.access(binary, os.X_OK):
        sys.exit("etcd_bench: %s is not an executable" % binary)
    # The binary named on the command line is the one measured (cluster.py reads HALYARD_BIN).
    os.environ["HALYARD_BIN"] = binary
    print("etcd_bench: halyard %s, etcd %s" % (binary, args.etcd), flush=True)
    # SIGTERM (bench/cluster.sh stopping us) unwinds through the finally blocks that stop servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {}
    with tempfile.TemporaryDirectory(prefix="halyard-etcd-bench.") as root:
        if args.rounds > 0:
            throughput(args, root, results)
        if args.failover_rounds > 0:
            failover(args, root, results)
    if args.out:
        with open(args.out, "w") as f:
            f.write("".join("%s %.3f\n" % kv for kv in sorted(results.items())))


if __name__ == "__main__":
    main()

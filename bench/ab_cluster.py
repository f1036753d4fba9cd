#!/usr/bin/env python3
"""Two or more halyard builds side by side on 3-node clusters, against Redis, in the same
rounds (the order reversed every other round): throughput, p50 and each process's CPU time per
SET from /proc (leader first, then the followers). Issue 17's A/B tool (docs/performance.md).

    bench/ab_cluster.py --bins main=/abs/halyard.main,branch=/abs/halyard [--durability fsync]
                        [--rounds 3] [--port 22400] [--tests c1,c50,p16] [--nodes 3] [--dir DIR]

c1: -c 1 -P 1 -n 2000; c50: -c 50 -P 1 -n 40000; p16: -c 50 -P 16 -n 300000, all `SET` with
-r 100000. Redis runs with appendfsync always (fsync) or everysec (replicated). --dir puts the
data directories there (/dev/shm: the engine's chain without the disk). Ports: build i's nodes
PORT+100*i+1..3 (peer ports +10000, HTTP +20), Redis PORT+90. Servers are stopped by PID."""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time
HZ = os.sysconf("SC_CLK_TCK")
def ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15])
def stop_procs(procs):
    """Stops server processes by PID: SIGTERM to all, then SIGKILL to any still running 15 s on."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=15)
def cli(port, *a):
    return subprocess.run(["redis-cli", "-p", str(port)] + list(a), capture_output=True, text=True, timeout=5).stdout
class Cluster:
    def __init__(s, name, binary, dur, base, work, n=3):
        s.name, s.procs, s.ports = name, [], [base + i for i in range(1, n + 1)]
        boot = ",".join("n%d@127.0.0.1:%d" % (i, base + 10000 + i) for i in range(1, n + 1))
        for i in range(1, n + 1):
            d = os.path.join(work, name, "n%d" % i); os.makedirs(d)
            argv = [binary, "--node-id", "n%d" % i, "--bind", "127.0.0.1", "--port", str(base + i),
                    "--http-port", str(base + 20 + i), "--data-dir", d + "/data", "--durability", dur,
                    "--log-level", "warn"]
            if n > 1:
                argv += ["--peer-port", str(base + 10000 + i), "--bootstrap", boot, "--cluster-secret", "ab-secret-0123456789abcdef0123"]
            s.procs.append(subprocess.Popen(argv, stdout=open(d + ".log", "w"), stderr=subprocess.STDOUT))
        dl = time.time() + 30
        while time.time() < dl:
            for i, p in enumerate(s.ports):
                if "raft_role:leader" in cli(p, "INFO", "replication"):
                    s.leader = i; s.port = p; return
            time.sleep(0.1)
        raise SystemExit("no leader " + name)
    def pids(s):  # leader first
        return [s.procs[s.leader].pid] + [p.pid for i, p in enumerate(s.procs) if i != s.leader]
class Redis:
    def __init__(s, name, fs, port, work):
        d = os.path.join(work, name); os.makedirs(d)
        s.name, s.port = name, port
        s.procs = [subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "yes", "--appendfsync", fs, "--dir", d],
                                    stdout=open(d + "/log", "w"), stderr=subprocess.STDOUT)]
        dl = time.time() + 15
        while time.time() < dl and "PONG" not in cli(port, "PING"):
            time.sleep(0.05)
    def pids(s):
        return [s.procs[0].pid]
TESTS = {"c1": ["-c", "1", "-P", "1", "-n", "2000"], "c50": ["-c", "50", "-P", "1", "-n", "40000"],
         "p16": ["-c", "50", "-P", "16", "-n", "300000"]}
def run(t, test):
    before = [ticks(p) for p in t.pids()]
    t0 = time.time()
    out = subprocess.run(["redis-benchmark", "-p", str(t.port), "-t", "set", "-r", "100000", "--csv"] + TESTS[test],
                         capture_output=True, text=True, timeout=300).stdout
    cpu = [(ticks(p) - b) for p, b in zip(t.pids(), before)]
    m = [l for l in out.splitlines() if l.startswith('"SET"')]
    f = [float(x) for x in m[-1].replace('"', '').split(",")[1:]]
    n = int(TESTS[test][TESTS[test].index("-n") + 1])
    return {"rps": f[0], "p50": f[3] * 1000, "p99": f[5] * 1000, "cpu": [c * 1e6 / HZ / n for c in cpu]}
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bins", required=True); ap.add_argument("--durability", default="fsync")
    ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--port", type=int, default=22400)
    ap.add_argument("--tests", default="c1,c50,p16"); ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ab.", dir=a.dir)
    targets = []
    try:
        for i, kv in enumerate(a.bins.split(",")):
            k, v = kv.split("=")
            targets.append(Cluster(k, v, a.durability, a.port + 100 * i, work, a.nodes))
        targets.append(Redis("redis", "always" if a.durability == "fsync" else "everysec", a.port + 90, work))
        for t in targets:
            subprocess.run(["redis-benchmark", "-p", str(t.port), "-t", "set", "-c", "50", "-n", "20000", "-r", "100000", "-q"], capture_output=True, timeout=120)
        res = {}
        print("ab: %s, %s UTC, load %s" % (a.durability, time.strftime("%H:%M", time.gmtime()), open("/proc/loadavg").read().split()[0]))
        for r in range(a.rounds):
            for test in a.tests.split(","):
                order = targets if r % 2 == 0 else targets[::-1]
                for t in order:
                    x = run(t, test)
                    res.setdefault((test, t.name), []).append(x)
                    print("round %d %-4s %-6s %9.0f/s p50 %6.0f us p99 %6.0f us cpu/op %s" % (r, test, t.name, x["rps"], x["p50"], x["p99"], " ".join("%.2f" % c for c in x["cpu"])), flush=True)
        print("medians:")
        for test in a.tests.split(","):
            for t in targets:
                v = res[(test, t.name)]
                cpus = [statistics.median(x["cpu"][i] for x in v) for i in range(len(v[0]["cpu"]))]
                print("  %-4s %-6s %9.0f/s p50 %6.0f us  cpu/op %s total %.2f" % (test, t.name, statistics.median(x["rps"] for x in v),
                      statistics.median(x["p50"] for x in v), " ".join("%.2f" % c for c in cpus), sum(cpus)))
    finally:
        stop_procs([p for t in targets for p in t.procs])
        shutil.rmtree(work, ignore_errors=True)
if __name__ == "__main__":
    main()

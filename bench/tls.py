#!/usr/bin/env python3
"""TLS cost, side by side (issue 16's benchmarks), with redis-benchmark on both servers.

  bench/tls.py /abs/path/to/halyard [ROUNDS]

1. One node: halyard and Debian's redis-server, each with a plain port and a tls-port (the same
   certificate, TLS 1.3, no client certificates), SET and GET at -P 1 and -P 16 (-c 50 -r
   100000). SET is compared with redis-server appendfsync always (durable, like halyard's SET:
   with TLS the client gets slower, batches smaller, and a durable server's fsync cost is
   spread over fewer writes; a peer without persistence would not show that), GET with
   redis-server without persistence. Per row: medians over ROUNDS (default 3) rounds, the order of the
   four servers/ports rotating per round; requests per second and server CPU time per request
   (user + sys of the server process, from /proc). The figure the issue sets a target on:
   halyard's ratio to Redis with TLS divided by its ratio without TLS (target >= 0.9).
2. A 3-node halyard cluster with and without tls-cluster yes: SET throughput at the leader
   (-P 16 -c 50), medians of ROUNDS runs; the ratio with TLS / without (target >= 0.85).

Every process is started on 127.0.0.1 and stopped by PID. Not a pass/fail test.
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

N_P1 = int(os.environ.get("BENCH_N", "100000"))
N_P16 = int(os.environ.get("BENCH_N_PIPE", "400000"))
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    """User + system CPU seconds of pid and its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
            "/CN=bench CA", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node", cwd=d)
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "san.ext", cwd=d)


def wait_ping(port, tls_args=(), deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        r = subprocess.run(["redis-cli", "-p", str(port)] + list(tls_args) + ["PING"],
                           capture_output=True, text=True, timeout=10)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise RuntimeError("nothing answers PING on %d" % port)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def bench(port, pid, tls_args, pipe, n, test):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-c", "50", "-r",
            "100000", "-n", str(n), "-P", str(pipe), "-q", "--csv"] + list(tls_args)
    c0 = cpu_s(pid)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    c1 = cpu_s(pid)
    if r.returncode != 0:
        raise RuntimeError("redis-benchmark failed: %s" % r.stderr)
    rps = None
    for line in r.stdout.splitlines():
        cells = [c.strip('"') for c in line.split('","')]
        if cells[0].strip('"') == test.upper():
            rps = float(cells[1].strip('"'))
    return rps, (c1 - c0) / n * 1e6  # requests/s, CPU microseconds per request


def single_node(hy_bin, work, certs, rounds):
    tls_files = {"cert": os.path.join(certs, "node.crt"), "key": os.path.join(certs, "node.key"),
                 "ca": os.path.join(certs, "ca.crt")}
    cli_tls = ["--tls", "--cacert", tls_files["ca"]]
    servers = {}
    procs = []
    try:
        def redis(name, *persist):
            port, tport = free_port(), free_port()
            os.makedirs(os.path.join(work, name))
            proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                                     "--tls-port", str(tport), "--tls-cert-file",
                                     tls_files["cert"], "--tls-key-file", tls_files["key"],
                                     "--tls-ca-cert-file", tls_files["ca"], "--tls-auth-clients",
                                     "no", "--save", "", "--dir", os.path.join(work, name)] +
                                    list(persist), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            procs.append(proc)
            return port, tport, proc
        rp, rt, p = redis("redis", "--appendonly", "no")
        # The durable peer: halyard acknowledges a SET once it is fsync'd.
        ap, at, aof = redis("aof", "--appendonly", "yes", "--appendfsync", "always")
        hp, ht = free_port(), free_port()
        h = subprocess.Popen([hy_bin, "--bind", "127.0.0.1", "--port", str(hp), "--tls-port",
                              str(ht), "--tls-cert-file", tls_files["cert"], "--tls-key-file",
                              tls_files["key"], "--tls-ca-cert-file", tls_files["ca"],
                              "--tls-auth-clients", "no", "--http-port", "0", "--data-dir",
                              os.path.join(work, "halyard"), "--log-level", "warn"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(h)
        for port, args in ((rp, ()), (rt, cli_tls), (ap, ()), (at, cli_tls), (hp, ()),
                           (ht, cli_tls)):
            wait_ping(port, args)
        servers = {("redis", "plain"): (rp, p.pid, ()), ("redis", "tls"): (rt, p.pid, cli_tls),
                   ("aof", "plain"): (ap, aof.pid, ()), ("aof", "tls"): (at, aof.pid, cli_tls),
                   ("halyard", "plain"): (hp, h.pid, ()), ("halyard", "tls"): (ht, h.pid, cli_tls)}
        order = list(servers)  # the plain redis serves GET only; aof SET only

        res = {}
        for r in range(rounds):
            rot = order[r % len(order):] + order[:r % len(order)]
            for pipe, n in ((1, N_P1), (16, N_P16)):
                for test in ("set", "get"):
                    for key in rot:
                        if key[0] == ("redis" if test == "set" else "aof"):
                            continue
                        port, pid, args = servers[key]
                        res.setdefault((key, pipe, test), []).append(
                            bench(port, pid, args, pipe, n, test))
        print("one node, redis-benchmark -c 50 -r 100000, medians of %d rounds" % rounds)
        print("%-5s %-4s %-6s %12s %12s %10s | %10s %10s %10s" % (
            "test", "-P", "mode", "peer rps", "halyard rps", "ratio", "peer us", "hy us",
            "cpu ratio"))
        print("(the peer: redis-server appendfsync always for SET, without persistence for GET)")
        summary = {}
        for pipe in (1, 16):
            for test in ("set", "get"):
                for mode in ("plain", "tls"):
                    peer = "aof" if test == "set" else "redis"
                    rr = res[((peer, mode), pipe, test)]
                    hr = res[(("halyard", mode), pipe, test)]
                    r_rps = statistics.median(x[0] for x in rr)
                    h_rps = statistics.median(x[0] for x in hr)
                    r_cpu = statistics.median(x[1] for x in rr)
                    h_cpu = statistics.median(x[1] for x in hr)
                    summary[(pipe, test, mode)] = (h_rps / r_rps, h_cpu / r_cpu)
                    print("%-5s %-4d %-6s %12.0f %12.0f %9.2fx | %10.2f %10.2f %9.2fx" % (
                        test.upper(), pipe, mode, r_rps, h_rps, h_rps / r_rps, r_cpu, h_cpu,
                        h_cpu / r_cpu))
        print()
        print("halyard's ratio with TLS / its ratio without TLS (target >= 0.90):")
        for pipe in (1, 16):
            for test in ("set", "get"):
                t, pl = summary[(pipe, test, "tls")], summary[(pipe, test, "plain")]
                print("  %s -P %-2d throughput %.2f   (CPU per request: %.2f)" % (
                    test.upper(), pipe, t[0] / pl[0], pl[1] / t[1]))
        print()
    finally:
        for p in procs:
            stop(p)


def cluster(hy_bin, work, certs, tls, rounds):
    ports = [free_port() for _ in range(3)]
    peers = [free_port() for _ in range(3)]
    boot = ",".join("n%d@127.0.0.1:%d" % (i + 1, peers[i]) for i in range(3))
    procs = []
    try:
        for i in range(3):
            argv = [hy_bin, "--node-id", "n%d" % (i + 1), "--bind", "127.0.0.1", "--port",
                    str(ports[i]), "--peer-port", str(peers[i]), "--http-port", "0",
                    "--data-dir", os.path.join(work, "c%s-n%d" % ("tls" if tls else "plain", i)),
                    "--bootstrap", boot, "--cluster-secret", "bench", "--log-level", "warn"]
            if tls:
                argv += ["--tls-cluster", "yes", "--tls-cert-file",
                         os.path.join(certs, "node.crt"), "--tls-key-file",
                         os.path.join(certs, "node.key"), "--tls-ca-cert-file",
                         os.path.join(certs, "ca.crt")]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        leader = None
        end = time.monotonic() + 30
        while leader is None and time.monotonic() < end:
            for i, port in enumerate(ports):
                r = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"],
                                   capture_output=True, text=True, timeout=10)
                if "raft_role:leader" in r.stdout:
                    leader = i
            time.sleep(0.05)
        if leader is None:
            raise RuntimeError("no leader")
        runs = []
        for _ in range(rounds):
            cpu0 = sum(cpu_s(p.pid) for p in procs)
            rps, _ = bench(ports[leader], procs[leader].pid, (), 16, N_P16 // 2, "set")
            cpu1 = sum(cpu_s(p.pid) for p in procs)
            runs.append((rps, (cpu1 - cpu0) / (N_P16 // 2) * 1e6))
        return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    finally:
        for p in procs:
            stop(p)


def main():
    hy_bin = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = tempfile.mkdtemp(prefix="halyard-bench-tls.")
    try:
        certs = os.path.join(work, "certs")
        os.makedirs(certs)
        make_certs(certs)
        print("halyard TLS bench - %s - %d CPUs" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                                                  time.gmtime()), os.cpu_count()))
        single_node(hy_bin, work, certs, rounds)
        plain = cluster(hy_bin, work, certs, False, rounds)
        tls = cluster(hy_bin, work, certs, True, rounds)
        print("3-node cluster, SET -P 16 -c 50 at the leader, medians of %d runs:" % rounds)
        print("  clear-text member links: %8.0f SET/s, %6.2f us CPU per SET (3 nodes)" % plain)
        print("  tls-cluster yes:         %8.0f SET/s, %6.2f us CPU per SET (3 nodes)" % tls)
        print("  ratio TLS / clear text: throughput %.2f (target >= 0.85), CPU per SET %.2f" % (
            tls[0] / plain[0], tls[1] / plain[1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Memory per small collection: halyard against Debian's redis-server, side by side.

    bench/memory.py /abs/path/to/halyard [--keys N] [--fields F] [--types hash,set,...] [--runs R]

For each type and run, both servers start afresh (so that one type's freed pages do not hide
the next one's): read INFO used_memory, used_memory_dataset and the process's RSS, load N keys
each holding a small collection of F members (default 1,000,000 keys of 10 members, loaded
with `redis-cli --pipe`, one multi-member command per key), check the key count, wait until
used_memory has settled (writes still on their way to disk, a snapshot being handed over),
read all three again (and used_memory once right after the load, before it settled: the
"load" columns; and halyard's once a snapshot it was asked for (HALYARD SNAPSHOT) has landed,
against Redis's settled used_memory: "h snap"). The table shows bytes per key (delta / N), medians over the runs, and
the halyard/redis ratios: used_memory is the whole process's allocations (for halyard it
includes the Raft log entries still held in memory: INFO memory used_memory_raft_log),
used_memory_dataset the keyspace's own (Redis: used_memory minus its overhead; halyard: the
bytes its maxmemory counts), RSS the resident memory the kernel counts (VmRSS; allocator
slack included), read once it has settled too (four readings 0.5 s apart within 1%: freed
pages go back to the kernel some time after the load, in both servers).

Types: string (SET k v: a 4-byte value; --fields does not apply), hash (HSET k f0 v0 ...:
2-byte fields, 4-byte values), set (SADD of 6-byte strings),
intset (SADD of integers), zset (ZADD of integer scores and 6-byte members), list (RPUSH of
6-byte strings). Both servers run with their default encoding thresholds and stop by PID at
exit. Nothing here is a pass/fail test; the machine may be shared, so only ratios matter.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def wait_ready(port, proc, name, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("memory: %s exited during start-up" % name)
        try:
            if cli(port, "PING") == "PONG":
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    sys.exit("memory: %s did not answer PING within %d s" % (name, deadline_s))


def used_memory(port):
    """(used_memory, used_memory_dataset) from INFO memory."""
    fields = dict(l.split(":", 1) for l in cli(port, "INFO", "memory").splitlines() if ":" in l)
    if "used_memory" not in fields or "used_memory_dataset" not in fields:
        sys.exit("memory: no used_memory/used_memory_dataset in INFO on port %d" % port)
    return int(fields["used_memory"]), int(fields["used_memory_dataset"])


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    sys.exit("memory: no VmRSS for pid %d" % pid)


def settled(port, deadline_s=30):
    """used_memory once three readings 0.3 s apart agree within 0.5% (or at the deadline)."""
    end = time.monotonic() + deadline_s
    last = []
    while True:
        last = (last + [used_memory(port)])[-3:]
        um = [x[0] for x in last]
        if len(um) == 3 and max(um) - min(um) <= max(um) // 200 or time.monotonic() > end:
            return last[-1]
        time.sleep(0.3)


def rss_settled(pid, deadline_s=20):
    """VmRSS once four readings 0.5 s apart agree within 1% (or at the deadline): allocators
    hand freed pages back some time after the load (jemalloc's decay, halyard's purge once a
    second), and a reading taken before that would measure when it was taken."""
    end = time.monotonic() + deadline_s
    last = []
    while True:
        last = (last + [rss(pid)])[-4:]
        if len(last) == 4 and max(last) - min(last) <= max(last) // 100 or time.monotonic() > end:
            return last[-1]
        time.sleep(0.5)


def resp(args):
    out = ["*%d\r\n" % len(args)]
    for a in args:
        out.append("$%d\r\n%s\r\n" % (len(a), a))
    return "".join(out)


def command(kind, i, fields):
    key = "%s:%d" % (kind, i)
    if kind == "string":
        return resp(["SET", key, "v%03d" % (i % 1000)])
    if kind == "hash":
        args = ["HSET", key]
        for f in range(fields):
            args += ["f%d" % f, "v%03d" % (i % 1000)]
    elif kind == "set":
        args = ["SADD", key] + ["m%05d" % ((i + f) % 100000) for f in range(fields)]
    elif kind == "intset":
        args = ["SADD", key] + [str((i + f * 7) % 30000) for f in range(fields)]
    elif kind == "zset":
        args = ["ZADD", key]
        for f in range(fields):
            args += [str(f * 10), "m%05d" % ((i + f) % 100000)]
    else:
        args = ["RPUSH", key] + ["e%05d" % ((i + f) % 100000) for f in range(fields)]
    return resp(args)


def write_load(path, kind, keys, fields):
    with open(path, "w", newline="") as f:
        for i in range(keys):
            f.write(command(kind, i, fields))


def snapshot_landed(port, deadline_s=60):
    """halyard only: takes a snapshot (HALYARD SNAPSHOT) and waits until every group's log
    base reached it (INFO replication raft_snapshot_index), then until used_memory settles."""
    cli(port, "HALYARD", "SNAPSHOT")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        info = cli(port, "INFO", "replication")
        if "raft_snapshot_index:" in info and "raft_snapshot_index:0\n" not in info + "\n":
            break
        time.sleep(0.2)
    else:
        sys.exit("memory: no snapshot landed on port %d within %d s" % (port, deadline_s))
    return settled(port)[0]


def measure(port, pid, load, keys, snapshot=False):
    before = used_memory(port) + (rss(pid),)
    with open(load, "rb") as f:
        # No pipe timeout: on a shared machine a server may stall longer than redis-cli's 30 s.
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--pipe",
                              "--pipe-timeout", "0"], stdin=f, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("memory: redis-cli --pipe failed on port %d: %s %s" % (port, out.stdout[-500:],
                                                                       out.stderr[-500:]))
    loaded = used_memory(port)[0]
    n = int(cli(port, "DBSIZE"))
    if n != keys:
        sys.exit("memory: port %d holds %d keys after loading %d" % (port, n, keys))
    after = settled(port) + (rss_settled(pid), loaded)
    after += (snapshot_landed(port) if snapshot else after[0],)
    return tuple((a - b) / keys for a, b in zip(after, before + (before[0], before[0])))


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_servers(a, redis_bin, work, procs):
    rport, hport = free_port(), free_port()
    rlog = open(os.path.join(work, "redis.log"), "a")
    procs.append(subprocess.Popen([redis_bin, "--port", str(rport), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", work],
                                  stdout=rlog, stderr=subprocess.STDOUT))
    wait_ready(rport, procs[-1], "redis-server")
    hlog = open(os.path.join(work, "halyard.log"), "a")
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    procs.append(subprocess.Popen([a.halyard, "--bind", "127.0.0.1", "--port", str(hport),
                                   "--data-dir", data, "--log-level", "warn",
                                   # a loaded machine must not turn writes into -UNKNOWN
                                   "--request-timeout-ms", "600000"],
                                  stdout=hlog, stderr=subprocess.STDOUT))
    wait_ready(hport, procs[-1], "halyard")
    return (rport, procs[-2]), (hport, procs[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("halyard")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--types", default="hash,set,intset,zset,list")
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    redis_bin = shutil.which("redis-server") or sys.exit("memory: redis-server not found")
    work = tempfile.mkdtemp(prefix="halyard-mem.")
    procs = []
    ratio = lambda h, r: h / r if r else float("nan")
    try:
        print("memory per key, %d keys of %d members each, medians of %d runs (delta / keys); "
              "redis-server %s" % (a.keys, a.fields, a.runs, subprocess.run(
                  [redis_bin, "--version"], capture_output=True, text=True).stdout.split(
                      "v=")[1].split()[0]))
        print("%-7s %7s %7s %6s  %7s %7s %6s  %7s %7s %6s  %7s %7s %6s  %7s %6s  %s" % (
            "type", "redis", "halyard", "ratio", "r data", "h data", "ratio", "r RSS", "h RSS",
            "ratio", "r load", "h load", "ratio", "h snap", "ratio", "encoding redis/halyard"))
        for kind in a.types.split(","):
            load = os.path.join(work, kind + ".resp")
            write_load(load, kind, a.keys, a.fields)
            rs, hs = [], []
            for _ in range(a.runs):
                (rport, rproc), (hport, hproc) = start_servers(a, redis_bin, work, procs)
                rs.append(measure(rport, rproc.pid, load, a.keys))
                hs.append(measure(hport, hproc.pid, load, a.keys, snapshot=True))
                key = "%s:0" % kind
                enc = "%s/%s" % (cli(rport, "OBJECT", "ENCODING", key),
                                 cli(hport, "OBJECT", "ENCODING", key))
                stop(hproc)
                stop(rproc)
            r = [statistics.median(x[i] for x in rs) for i in range(5)]
            h = [statistics.median(x[i] for x in hs) for i in range(5)]
            print("%-7s %7.1f %7.1f %6.2f  %7.1f %7.1f %6.2f  %7.1f %7.1f %6.2f  %7.1f %7.1f %6.2f"
                  "  %7.1f %6.2f  %s" % (
                      kind, r[0], h[0], ratio(h[0], r[0]), r[1], h[1], ratio(h[1], r[1]), r[2],
                      h[2], ratio(h[2], r[2]), r[3], h[3], ratio(h[3], r[3]), h[4],
                      ratio(h[4], r[0]), enc), flush=True)
            os.unlink(load)
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

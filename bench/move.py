#!/usr/bin/env python3
"""`make bench-move`: issue 12's benchmark, "time to move 1 GiB of keys onto a new node with the
default limits, and the client p99 write latency during the move against before it (target <=
2x), in one run". Nothing here is a pass/fail test; it prints its figures, the target and "met"
or "MISSED", and says plainly when a move did not finish.

    bench/move.py /abs/path/to/halyard [--size 1G] [--runs 3] [--partitions 16] [--rate 400]

Each run, on a fresh cluster:
  1. start 3 nodes (bench/partitions.py's Cluster: 127.0.0.1, free ports, one temporary
     directory, every server flag at its default but --partitions, replication factor 3);
  2. load --size bytes of values (--value-bytes, default 1,000, each key "{tag}:i" with one hash
     tag per partition so that the keys spread evenly), pipelined on raw sockets straight to each
     partition's leader, two connections per node; every key answered +OK or it is sent again;
  3. wait until leaderships are balanced and no node is encoding a snapshot (the load's own
     snapshots would otherwise fall into the baseline), then start the steady write load:
     --clients threads (default 4), one connection each to one of the three nodes (which proxies
     the keys it does not lead), together --rate SET/s (default 400) of a random loaded key with
     a new value of the same size, paced by a schedule. A request's latency runs from the time
     the schedule gave it to its reply, so that a stalled server is charged for the requests it
     held back too (no coordinated omission); the time from sending to the reply is kept as the
     "service" latency;
  4. after --warmup seconds (5, not counted), a baseline window of --baseline seconds (30);
  5. start a 4th node with --join (as docs/operations.md "Adding and removing members") and,
     every half second, ask `halyctl --json cluster rebalance status` and HALYARD STATUS JSON;
     the move is over when every partition is settled (its leader's voters are the map's
     replicas) and every member, the new one too, holds floor or ceil of the replicas' fair
     share, in two polls in a row. Move time = from starting the 4th process to the first of
     those polls (so it includes the new node's start and its join).
Reported per run: the load (MiB, keys, seconds, the dataset the cluster counts), the move time,
the moves (MOVE_STARTED / MOVE_FINISHED events of every node) and their median length, what
reached the new node (its replicas, their dataset, and the bytes it read from sockets and files,
/proc/PID/io rchar), the steady load's p50 / p99 / max and errors before and during the move
with the ratio of the p99s, each server's CPU seconds during the move (user + system and reaped
children, /proc/PID/stat) next to its baseline rate, and memory: each server's RSS before the
join and its peak during the move (sampled, and VmHWM), and the most bytes the Raft cores held
as snapshots (INFO memory used_memory_snapshots) on any node. With --runs N, medians.

Bounds: the load gets --load-deadline seconds (default: 120 + 2 s per MiB), the move
--move-deadline (default 1,800). Whenever the machine's MemAvailable falls below --mem-floor MiB
(default 2,048: the machine may be shared), the run stops and says so, with the memory each
server held: a move that needs more memory than there is is a result, not a reason to take the
machine down. Everything is stopped by PID; the temporary directory is removed at the end
(--logs DIR keeps each run's server logs there).
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import partitions as pt  # noqa: E402  (also puts tests/integration on the path)
from cluster import free_port_pair  # noqa: E402
from many_partitions import tags_for_partitions  # noqa: E402

P99_TARGET = 2.0
POLL_S = 0.5
LOAD_BATCH = 64  # commands per pipelined batch of the bulk load
LOAD_WINDOW = 2  # batches in flight per connection
LOAD_CONNS_PER_NODE = 2
MIB = 1 << 20


def say(line=""):
    print(line, flush=True)


def parse_size(text):
    """Bytes from "1G", "64M", "512MiB", "100k" or a plain number."""
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def json_reply(port, *args, timeout=5.0):
    """A command whose reply is one bulk string of JSON, on a fresh connection."""
    raw = pt.cmd(port, *args, timeout=timeout)
    head, _, body = raw.partition(b"\r\n")
    if not head.startswith(b"$"):
        raise ValueError("%s: %r" % (" ".join(args), raw[:200]))
    return json.loads(body[:int(head[1:])])


def info(port, section, timeout=2.0):
    out = {}
    for line in pt.cmd(port, "INFO", section, timeout=timeout).decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def proc_rchar(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


class OutOfMemory(Exception):
    pass


class MoveCluster(pt.Cluster):
    """bench/partitions.py's three nodes, and a fourth that joins through n1."""

    NAME = "bench-move"

    def argv(self, i):
        a = super().argv(i)
        if i < 3:
            return a
        k = a.index("--bootstrap")
        a[k:k + 2] = ["--join", "127.0.0.1:%d" % (self.ports[0] + 10000)]
        # A joiner takes the partition count from the member it joins through.
        k = a.index("--partitions")
        del a[k:k + 2]
        return a

    def join(self):
        """Starts node n4 with --join; returns the time it was started."""
        while True:
            p = free_port_pair()
            if all(abs(p - q) not in (0, 1000, 10000) for q in self.ports):
                break
        self.ports.append(p)
        self.procs.append(None)
        t = time.monotonic()
        self.start(len(self.procs) - 1)
        return t

    def halyctl(self, *args):
        exe = os.path.join(os.path.dirname(self.bin), "halyctl")
        return subprocess.run([exe, "-p", str(self.ports[0])] + list(args), capture_output=True,
                              text=True, timeout=30)


class Keys:
    """The loaded keys: key i lies in partition i % parts (through its hash tag), and its
    values are slices of one random pool (no two neighbours alike, nothing a codec could
    shrink)."""

    def __init__(self, parts, count, value_bytes):
        self.parts, self.count, self.value_bytes = parts, count, value_bytes
        tags = tags_for_partitions(parts)
        self.tags = [tags[p].encode() for p in range(parts)]
        self.pool = os.urandom(65536 + value_bytes)

    def set_cmd(self, i, salt=0):
        key = b"{%s}:%d" % (self.tags[i % self.parts], i)
        at = (i * 7919 + salt * 104729) % 65536
        return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(key), key, self.value_bytes, self.pool[at:at + self.value_bytes])


def read_lines(sock, buf, count):
    """Reads `count` one-line replies (+OK or an -error) from sock after what buf holds;
    returns (the lines, what is left over)."""
    lines = []
    while len(lines) < count:
        k = buf.find(b"\r\n")
        if k < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
            continue
        lines.append(buf[:k])
        buf = buf[k + 2:]
    return lines, buf


def load_worker(port, keys, indexes, failed, deadline, abort):
    """Sends SET of every key of `indexes` through port in pipelined batches; adds to failed
    the keys answered anything but +OK (or left when the connection broke, time ran out or
    `abort` was set)."""
    at = sent = 0  # indexes[:at] answered, indexes[:sent] sent
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            buf = b""
            while at < len(indexes) and time.monotonic() < deadline and not abort.is_set():
                # Up to LOAD_WINDOW batches in flight, so that the server always has the next
                # one to put in the same fsync as this one.
                while sent < len(indexes) and sent - at < LOAD_BATCH * LOAD_WINDOW:
                    batch = indexes[sent:sent + LOAD_BATCH]
                    s.sendall(b"".join(keys.set_cmd(i) for i in batch))
                    sent += len(batch)
                batch = indexes[at:at + LOAD_BATCH]
                lines, buf = read_lines(s, buf, len(batch))
                failed.extend(i for i, line in zip(batch, lines) if line != b"+OK")
                at += len(batch)
    except OSError:
        pass  # the batches under way are sent again with the rest (a SET twice is the same SET)
    failed.extend(indexes[at:])


def bulk_load(c, keys, deadline_s, sampler):
    """Loads every key, each straight to its partition's leader (any node would proxy it, at a
    hop's cost); keys answered with an error are sent again, up to 5 passes. Returns the
    seconds it took."""
    abort = threading.Event()
    t0 = time.monotonic()
    deadline = t0 + deadline_s
    todo = list(range(keys.count))
    for _ in range(5):
        leaders = c.leaders(0)
        per_conn = {}
        for i in todo:
            node = leaders.get(i % keys.parts, 0)
            slot = (i // keys.parts) % LOAD_CONNS_PER_NODE
            per_conn.setdefault((node, slot), []).append(i)
        failed = []
        threads = [threading.Thread(target=load_worker, args=(c.ports[node], keys, idx, failed, deadline, abort))
                   for (node, _), idx in sorted(per_conn.items())]
        for th in threads:
            th.start()
        try:
            while any(th.is_alive() for th in threads):
                time.sleep(POLL_S)
                c.check_alive()
                sampler.sample()
        finally:
            abort.set()
            for th in threads:
                th.join()
        abort.clear()
        todo = failed
        if not todo or time.monotonic() > deadline:
            break
        c.wait_led([0, 1, 2])
    if todo:
        raise SystemExit("bench-move: %d of %d keys not loaded within %.0f s" % (
            len(todo), keys.count, deadline_s))
    return time.monotonic() - t0


class SteadyLoad:
    """`clients` threads, each with one connection to one of `ports`, together `rate` SETs per
    second on a schedule; every request is recorded as (scheduled, sent, answered, ok)."""

    def __init__(self, ports, keys, rate, clients):
        self.ports, self.keys, self.clients = ports, keys, clients
        self.interval = clients / float(rate)
        self.stop_ev = threading.Event()
        self.records = [[] for _ in range(clients)]
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True) for t in range(clients)]

    def start(self):
        self.t0 = time.monotonic()
        for th in self.threads:
            th.start()

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(timeout=60)

    def run(self, t):
        rng = random.Random(t)
        out = self.records[t]
        port = self.ports[t % len(self.ports)]
        due = self.t0 + t * self.interval / self.clients
        sock, buf, salt = None, b"", 0
        while not self.stop_ev.is_set():
            now = time.monotonic()
            if now < due:
                # Pacing to the schedule, not waiting for a condition.
                self.stop_ev.wait(due - now)
                continue
            salt += 1
            sent = time.monotonic()
            try:
                if sock is None:
                    sock, buf = socket.create_connection(("127.0.0.1", port), timeout=30), b""
                sock.sendall(self.keys.set_cmd(rng.randrange(self.keys.count), salt))
                lines, buf = read_lines(sock, buf, 1)
                out.append((due, sent, time.monotonic(), lines[0] == b"+OK", port, lines[0][:80]))
            except OSError as e:
                out.append((due, sent, time.monotonic(), False, port, str(e)[:80].encode()))
                if sock is not None:
                    sock.close()
                sock = None
                self.stop_ev.wait(0.1)  # a node that refuses connections is not hammered
            due += self.interval
        if sock is not None:
            sock.close()

    def window(self, a, b):
        """Figures of the requests scheduled in [a, b): count, errors, latencies in ms from the
        schedule and from sending, sorted."""
        recs = [r for rs in self.records for r in list(rs) if a <= r[0] < b]
        lat = sorted((r[2] - r[0]) * 1000 for r in recs)
        svc = sorted((r[2] - r[1]) * 1000 for r in recs)
        errs = sorted(set(r[5].decode(errors="replace") for r in recs if not r[3]))
        # The slowest replies, as (seconds after a, service ms, node port): where a stall was.
        slow = sorted(((r[1] - a, (r[2] - r[1]) * 1000, r[4]) for r in recs), key=lambda x: -x[1])[:5]
        return {"count": len(recs), "errors": sum(1 for r in recs if not r[3]), "lat": lat,
                "svc": svc, "seconds": b - a, "error_texts": errs[:5], "slow": sorted(slow)}


def pct(xs, p):
    return pt.nearest_rank(xs, p) if xs else float("nan")


def wait_quiet(c, deadline_s=600):
    """Waits until no node is encoding a snapshot (INFO persistence)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        c.check_alive()
        try:
            if all(info(p, "persistence").get("rdb_bgsave_in_progress") == "0" for p in c.ports):
                return
        except OSError:
            pass
        time.sleep(POLL_S)
    say("    (a node was still encoding a snapshot after %d s: baseline taken anyway)" % deadline_s)


def settled(c, names):
    """(map fair, every partition settled) as halyctl and HALYARD STATUS JSON tell it now."""
    try:
        st = json_reply(c.ports[0], "HALYARD", "STATUS", "JSON")
        per = st.get("replicas_per_node", {})
        counts = [per.get(n, 0) for n in names]
        fair = len(per) == len(names) and max(counts) - min(counts) <= 1
        out = c.halyctl("--json", "cluster", "rebalance", "status")
        rb = json.loads(out.stdout) if out.stdout.strip() else {}
        done = (out.returncode == 0 and rb.get("partitions") == c.parts and rb.get("settled") == c.parts
                and rb.get("unknown") == 0)
        return fair, done, rb
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False, False, {}


class Sampler:
    """The memory figures of the move: RSS per server, the Raft cores' snapshot bytes per node
    (INFO memory), and the machine's MemAvailable against the floor."""

    def __init__(self, c, floor_mib):
        self.c, self.floor = c, floor_mib
        self.rss_max = {}
        self.snap_max = {}
        self.log_max = {}
        self.avail_min = mem_available_mib()

    def sample(self):
        for i, pr in enumerate(self.c.procs):
            if pr is not None and pr.poll() is None:
                self.rss_max[i] = max(self.rss_max.get(i, 0), pt.proc_rss_kb(pr.pid) // 1024)
                try:
                    m = info(self.c.ports[i], "memory", timeout=1.0)
                    self.snap_max[i] = max(self.snap_max.get(i, 0), int(m.get("used_memory_snapshots", 0)))
                    self.log_max[i] = max(self.log_max.get(i, 0), int(m.get("used_memory_raft_log", 0)))
                except (OSError, ValueError):
                    pass  # a node too busy to answer within a second: the next poll will do
        avail = mem_available_mib()
        self.avail_min = min(self.avail_min, avail)
        if avail < self.floor:
            raise OutOfMemory("MemAvailable %d MiB < floor %d MiB; servers' RSS %s" % (
                avail, self.floor, ", ".join("n%d %d MiB" % (i + 1, pt.proc_rss_kb(pr.pid) // 1024)
                                             for i, pr in enumerate(self.c.procs)
                                             if pr is not None and pr.poll() is None)))


def cpu_s(c):
    """CPU seconds so far of each server (0 for one not started)."""
    return [pt.proc_ticks(pr.pid) / pt.HZ if pr is not None and pr.poll() is None else 0.0 for pr in c.procs]


def keep_running(c, sampler, until):
    """Returns at monotonic time `until`, checking the servers and memory every poll."""
    while time.monotonic() < until:
        c.check_alive()
        sampler.sample()
        time.sleep(min(POLL_S, max(0.0, until - time.monotonic())))


def move_events(c, seen):
    """The MOVE_STARTED / MOVE_FINISHED events every node recorded after the ids in seen;
    returns (moves started, moves finished, lengths in s of the moves whose start and end one
    node reported)."""
    started, finished, lengths = {}, {}, []
    for i, port in enumerate(c.ports):
        try:
            evs = [json.loads(e) for e in pt.events(port)]
        except (OSError, ValueError):
            continue
        mine = {}
        for e in evs:
            if e.get("id", 0) <= seen.get(i, 0) or e.get("type") not in ("MOVE_STARTED", "MOVE_FINISHED"):
                continue
            key = (e.get("partition"), e.get("target"))
            if e["type"] == "MOVE_STARTED":
                started[key] = True
                mine[key] = e["time"]
            else:
                finished[key] = True
                if key in mine:
                    lengths.append((e["time"] - mine.pop(key)) / 1000.0)
    return len(started), len(finished), lengths


def run_once(binary, work, args, keys, r):
    res = {"run": r}
    c = MoveCluster(binary, work, args.partitions)
    load = None
    try:
        c.wait_led([0, 1, 2], deadline_s=120)
        res["load_s"] = bulk_load(c, keys, min(args.load_deadline, args.end_at - time.monotonic()),
                                  Sampler(c, args.mem_floor))
        c.wait_led([0, 1, 2], deadline_s=120)
        res["dataset"] = int(info(c.ports[0], "memory", timeout=10)["cluster_used_memory_dataset"])
        say("    run %d: loaded %d keys (%.0f MiB of values) in %.1f s (%.1f MiB/s); the cluster counts "
            "a dataset of %.0f MiB" % (r, keys.count, keys.count * keys.value_bytes / MIB, res["load_s"],
                                       keys.count * keys.value_bytes / MIB / res["load_s"], res["dataset"] / MIB))
        wait_quiet(c)
        sampler = Sampler(c, args.mem_floor)
        res["rss_loaded"] = [pt.proc_rss_kb(pr.pid) // 1024 for pr in c.procs]
        load = SteadyLoad(c.ports[:3], keys, args.rate, args.clients)
        load.start()
        b0 = load.t0 + args.warmup
        keep_running(c, sampler, b0)
        cpu_b0 = cpu_s(c)
        keep_running(c, sampler, b0 + args.baseline)
        b1 = time.monotonic()
        cpu_b1 = cpu_s(c)
        res["cpu_base_pct"] = [100.0 * (y - x) / (b1 - b0) for x, y in zip(cpu_b0, cpu_b1)]
        seen = {}
        for i, port in enumerate(c.ports):
            # A generous timeout: right after the baseline a loaded server on a busy shared
            # machine took over 5 s (pt.events' default) to answer, which ended the run.
            seen[i] = max([json.loads(e).get("id", 0) for e in pt.events(port, timeout=60.0)] or [0])
        sampler = Sampler(c, args.mem_floor)  # the move's own peaks
        cpu_j = cpu_s(c) + [0.0]
        t_join = c.join()
        names = ["n%d" % (i + 1) for i in range(4)]
        deadline = min(t_join + args.move_deadline, args.end_at)
        t_fair = t_end = streak = None
        next_say = t_join + 10
        rb = {}
        try:
            while time.monotonic() < deadline:
                c.check_alive()
                sampler.sample()
                fair, done, got = settled(c, names)
                now = time.monotonic()
                rb = got or rb
                if fair and t_fair is None:
                    t_fair = now
                if fair and done:
                    if streak is not None:
                        t_end = streak
                        break
                    streak = now
                else:
                    streak = None
                if now >= next_say:
                    next_say = now + 10
                    say("      %5.0f s after the join: %s/%s partitions settled, %s in progress, %s pending; "
                        "%d moves finished; RSS %s MiB; MemAvailable %d MiB" % (
                            now - t_join, rb.get("settled", "?"), rb.get("partitions", "?"),
                            rb.get("in_progress", "?"), rb.get("pending", "?"), move_events(c, seen)[1],
                            "/".join("%d" % (pt.proc_rss_kb(pr.pid) // 1024) for pr in c.procs),
                            mem_available_mib()))
                time.sleep(POLL_S)
        except SystemExit:
            # Stopped from outside (SIGTERM) while moving: what was measured so far is still
            # reported, as an unfinished move, and no further run starts.
            res["interrupted"] = True
            say("    run %d: stopped from outside %.0f s after the join; the figures so far follow" % (
                r, time.monotonic() - t_join))
        t_stop = t_end if t_end is not None else time.monotonic()
        cpu_e = cpu_s(c)
        load.stop()
        res["move_s"] = t_end - t_join if t_end is not None else None
        res["fair_s"] = t_fair - t_join if t_fair is not None else None
        res["unsettled"] = None if t_end is not None else rb
        res["cpu_move"] = [y - x for x, y in zip(cpu_j, cpu_e)]
        res["cpu_move_pct"] = [100.0 * x / (t_stop - t_join) for x in res["cpu_move"]]
        res["base"] = load.window(b0, b0 + args.baseline)
        res["move"] = load.window(t_join, t_stop)
        res["moves"] = move_events(c, seen)
        res["ports"] = list(c.ports)
        new = c.procs[3]
        st = json_reply(c.ports[0], "HALYARD", "STATUS", "JSON")
        res["n4_replicas"] = st.get("replicas_per_node", {}).get("n4", 0)
        res["n4_dataset"] = int(info(c.ports[3], "memory", timeout=10).get("used_memory_dataset", 0))
        res["n4_rchar"] = proc_rchar(new.pid)
        res["rss_peak"] = [sampler.rss_max.get(i, 0) for i in range(4)]
        res["hwm"] = [proc_status_kb(pr.pid, "VmHWM") // 1024 for pr in c.procs]
        res["snap_max"] = [sampler.snap_max.get(i, 0) for i in range(4)]
        res["log_max"] = [sampler.log_max.get(i, 0) for i in range(4)]
        res["avail_min"] = sampler.avail_min
    except OutOfMemory as e:
        res["oom"] = str(e)
        say("    run %d STOPPED: %s" % (r, e))
    finally:
        if load is not None:
            load.stop()
        c.stop()
        if args.logs:
            os.makedirs(args.logs, exist_ok=True)
            for name in os.listdir(c.dir):
                if name.endswith(".log"):
                    os.replace(os.path.join(c.dir, name), os.path.join(args.logs, "run%d-%s" % (r, name)))
        shutil.rmtree(c.dir, ignore_errors=True)
    return res


def fmt_ms(x):
    # None: no request completed in the window (a median of nothing), as NaN.
    return "%.1f" % x if x is not None and x == x else "-"


def report_run(res):
    r = res["run"]
    if "oom" in res:
        return
    if res["move_s"] is None:
        say("    run %d: the move did NOT settle within the deadline; last status %s" % (r, json.dumps(res["unsettled"])))
    else:
        say("    run %d: join -> settled %.1f s (the map gave every member its share %.1f s after the join)" % (
            r, res["move_s"], res["fair_s"]))
    started, finished, lengths = res["moves"]
    say("    run %d: %d moves started, %d finished (events); a move took %s s at the median, %s s at most" % (
        r, started, finished, "%.1f" % pt.med(lengths) if lengths else "?", "%.1f" % max(lengths) if lengths else "?"))
    say("    run %d: n4 holds %d replicas, a dataset of %.0f MiB; it read %.0f MiB (rchar: sockets and files)" % (
        r, res["n4_replicas"], res["n4_dataset"] / MIB, res["n4_rchar"] / MIB))
    for name in ("base", "move"):
        w = res[name]
        say("    run %d: %-8s %6.1f s, %6d SETs (%4.0f/s), errors %d: p50 %s ms, p99 %s ms, max %s ms "
            "(service p50 %s, p99 %s ms)" % (
                r, "baseline" if name == "base" else "move", w["seconds"], w["count"], w["count"] / w["seconds"],
                w["errors"], fmt_ms(pct(w["lat"], 50)), fmt_ms(pct(w["lat"], 99)),
                fmt_ms(w["lat"][-1] if w["lat"] else float("nan")),
                fmt_ms(pct(w["svc"], 50)), fmt_ms(pct(w["svc"], 99))))
    for name in ("base", "move"):
        w = res[name]
        say("    run %d: %-8s slowest replies (s from the window's start, ms, node): %s%s" % (
            r, "baseline" if name == "base" else "move", ", ".join(
                "%.1f s %.0f ms n%d" % (t, ms, res["ports"].index(port) + 1) for t, ms, port in w["slow"]),
            "; errors: " + " | ".join(w["error_texts"]) if w["error_texts"] else ""))
    say("    run %d: CPU s during the move %s (%% of a core: %s; baseline %s)" % (
        r, " ".join("n%d %.1f" % (i + 1, x) for i, x in enumerate(res["cpu_move"])),
        " ".join("%.0f%%" % x for x in res["cpu_move_pct"]),
        " ".join("%.0f%%" % x for x in res["cpu_base_pct"])))
    say("    run %d: RSS MiB loaded %s, peak during the move %s (VmHWM %s); Raft snapshot bytes held, most: %s MiB; "
        "log in memory, most: %s MiB; MemAvailable min %d MiB" % (
            r, "/".join("%d" % x for x in res["rss_loaded"]), "/".join("%d" % x for x in res["rss_peak"]),
            "/".join("%d" % x for x in res["hwm"]), "/".join("%.0f" % (x / MIB) for x in res["snap_max"]),
            "/".join("%.0f" % (x / MIB) for x in res["log_max"]), res["avail_min"]))


def summary(results, args, size):
    ok = [r for r in results if "oom" not in r and r["move_s"] is not None]
    say("summary (bench/move.py; %d of %d runs settled; %s partitions, RF 3, 3 -> 4 nodes, %.0f MiB of %d-byte "
        "values, %d SET/s steady load on %d connections; a shared machine: rates move with the load):" % (
            len(ok), len(results), args.partitions, size / MIB, args.value_bytes, args.rate, args.clients))
    for r in results:
        if "oom" in r:
            say("  run %d stopped for memory: %s" % (r["run"], r["oom"]))
        elif r["move_s"] is None:
            say("  run %d: the move did not settle within %.0f s" % (r["run"], args.move_deadline))
    if not ok:
        return
    m = pt.med
    rows = [
        ("load (s)", "%.1f" % m([r["load_s"] for r in ok])),
        ("move: join -> settled (s)", "%.1f" % m([r["move_s"] for r in ok])),
        ("moved onto n4: replicas / dataset MiB / read MiB", "%d / %.0f / %.0f" % (
            m([r["n4_replicas"] for r in ok]), m([r["n4_dataset"] for r in ok]) / MIB,
            m([r["n4_rchar"] for r in ok]) / MIB)),
        ("rate onto n4 (dataset MiB/s)", "%.1f" % m([r["n4_dataset"] / MIB / r["move_s"] for r in ok])),
    ]
    for name, label in (("base", "before"), ("move", "during")):
        rows.append(("p50 / p99 / max %s (ms)" % label, "%s / %s / %s" % (
            fmt_ms(m([pct(r[name]["lat"], 50) for r in ok])), fmt_ms(m([pct(r[name]["lat"], 99) for r in ok])),
            fmt_ms(m([r[name]["lat"][-1] for r in ok if r[name]["lat"]]))),))
        rows.append(("errors %s" % label, "%d" % m([r[name]["errors"] for r in ok])))
    for name, label in (("base", "before"), ("move", "during")):
        rows.append(("service p50 / p99 %s (ms, from sending)" % label, "%s / %s" % (
            fmt_ms(m([pct(r[name]["svc"], 50) for r in ok])), fmt_ms(m([pct(r[name]["svc"], 99) for r in ok])))))
    # A load that fell behind its schedule (the servers answered fewer SETs a second than it
    # offered) has latencies from the schedule that measure its growing backlog, not the
    # servers: then only the service latencies compare.
    behind = [r for r in ok for w in (r["base"], r["move"])
              if w["count"] and (w["svc"][len(w["svc"]) // 2] / 1000.0) * args.rate / args.clients > 0.9]
    ratio = m([pct(r["move"]["lat"], 99) / pct(r["base"]["lat"], 99) for r in ok])
    svc_ratio = m([pct(r["move"]["svc"], 99) / pct(r["base"]["svc"], 99) for r in ok])
    rows.append(("p99 during / before", "%.2fx%s  (target <= %.0fx: %s)" % (
        ratio, " (INVALID: the load fell behind its schedule)" if behind else "", P99_TARGET,
        "n/a" if behind else pt.verdict(ratio <= P99_TARGET))))
    rows.append(("service p99 during / before", "%.2fx" % svc_ratio))
    rows.append(("CPU s during the move n1/n2/n3/n4", "/".join(
        "%.1f" % m([r["cpu_move"][i] for r in ok]) for i in range(4))))
    rows.append(("peak RSS MiB n1/n2/n3/n4", "/".join("%d" % m([r["rss_peak"][i] for r in ok]) for i in range(4))))
    rows.append(("Raft snapshot bytes held, most (MiB)", "%.0f" % (m([max(r["snap_max"]) for r in ok]) / MIB)))
    for k, v in rows:
        say("  %-50s %s" % (k, v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("halyard", help="absolute path to the halyard binary (halyctl next to it)")
    ap.add_argument("--size", default="1G", help="bytes of values to load (1G, 64M, ...; default 1G)")
    ap.add_argument("--runs", type=int, default=3, help="fresh clusters, medians reported (default 3)")
    ap.add_argument("--partitions", type=int, default=16, help="partition count (default 16, make run's)")
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=400, help="steady load, SET/s in all (default 400)")
    ap.add_argument("--clients", type=int, default=4, help="steady load connections (default 4)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--baseline", type=float, default=30.0)
    ap.add_argument("--load-deadline", type=float, default=None)
    ap.add_argument("--move-deadline", type=float, default=1800.0)
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds for everything: the load and the move end by then (a move cut short is "
                    "reported as not settled)")
    ap.add_argument("--mem-floor", type=int, default=2048, help="MiB of MemAvailable below which a run stops")
    ap.add_argument("--logs", help="keep each run's server logs in this directory")
    args = ap.parse_args()
    if not os.access(args.halyard, os.X_OK):
        raise SystemExit("usage: bench/move.py /abs/path/to/halyard [--size 1G] [--runs N]")
    size = parse_size(args.size)
    args.end_at = time.monotonic() + args.time_limit if args.time_limit else float("inf")
    if args.load_deadline is None:
        args.load_deadline = 120.0 + 2.0 * size / MIB
    keys = Keys(args.partitions, max(args.partitions, size // args.value_bytes), args.value_bytes)
    # SIGTERM (make, or a caller's timeout) unwinds through the finally blocks that stop clusters.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say("bench-move: %d partitions, 3 nodes then a 4th; %d keys of %d bytes (%.0f MiB); steady load %d SET/s on %d "
        "connections; %.0f s baseline; %d run(s); load average %s" % (
            args.partitions, keys.count, args.value_bytes, size / MIB, args.rate, args.clients, args.baseline,
            args.runs, open("/proc/loadavg").read().split()[0]))
    work = tempfile.mkdtemp(prefix="halyard-bench-move.")
    results = []
    try:
        for r in range(1, args.runs + 1):
            res = run_once(args.halyard, work, args, keys, r)
            report_run(res)
            results.append(res)
            if res.get("interrupted") or time.monotonic() >= args.end_at:
                break
    finally:
        shutil.rmtree(work, ignore_errors=True)
        summary(results, args, size)


if __name__ == "__main__":
    main()

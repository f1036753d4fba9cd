"""libhalyard's asynchronous API against real clusters (issue 15): a C program
(tests/tools/hy_client_async.c) keeps a window of requests in flight through
halyard_command_async while members are killed with kill -9 or stopped with SIGSTOP. Every
accepted request gets exactly one callback with a status (the program exits 3 otherwise); with
exactly-once sessions the counter equals the acknowledged increments. Reads to replicas go over
READONLY connections; hedged reads keep answering while the member a read went to is stopped;
load shedding refuses what is beyond max_outstanding at once; halyard_close cancels."""

import os
import signal
import subprocess
import threading

import pytest
import redis

from cluster import Cluster, ClusterSet, info
from conftest import wait_for
from fault_proxy import ProxiedCluster


def tool():
    return os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "tools", "hy_client_async")


@pytest.fixture
def make_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, extra=None, proxied=False):
        return clusters.start(ProxiedCluster if proxied else Cluster, n, extra or {})

    yield make
    clusters.stop_all()


class Async:
    """hy_client_async in the background; `progress` counts the callbacks so far."""

    def __init__(self, ports, mode, key, n, *flags):
        addrs = ",".join("127.0.0.1:%d" % p for p in ports)
        self.proc = subprocess.Popen([tool(), addrs, mode, key, str(n)] + list(flags),
                                     stdout=subprocess.PIPE, text=True)
        self.progress, self.lines, self.done, self.hb_downs, self.opens = 0, [], None, 0, 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            self.lines.append(line)
            if line.startswith("progress "):
                f = line.split()
                self.progress = int(f[1])
                kv = dict(x.split("=") for x in f[2:])
                self.hb_downs = int(kv["heartbeat_downs"])
                self.opens = int(kv["breaker_opens"])
            elif line.startswith("done "):
                self.done = dict(kv.split("=") for kv in line.split()[1:])

    def wait_progress(self, more, what, deadline_s=60):
        mark = self.progress
        wait_for(lambda: self.progress >= mark + more or self.proc.poll() is not None,
                 deadline_s, what)

    def finish(self, deadline_s=120):
        try:
            rc = self.proc.wait(timeout=deadline_s)
        finally:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.reader.join(10)
        assert rc == 0, (rc, self.lines[-10:])
        assert self.done is not None, self.lines[-10:]
        d = {}
        for k, v in self.done.items():
            d[k] = float(v) if "." in v else int(v)
        return d


def leader_first(c):
    li = c.leader()
    return [c.ports[li]] + [p for i, p in enumerate(c.ports) if i != li]


def counter(c, key):
    return int(redis.Redis("127.0.0.1", c.ports[c.leader()], socket_timeout=10).get(key) or 0)


@pytest.mark.parametrize("loop,pipeline", [(False, 32), (True, 32), (False, 1)],
                         ids=["io-threads", "libuv-loop", "no-pipelining"])
def test_async_exactly_once_across_leader_kills(make_cluster, loop, pipeline):
    """kill -9 of the leader twice (restarting it) under 64 asynchronous INCRs in flight: every
    request gets its callback, every one is acknowledged, and the counter equals their number
    (no loss, no double apply), whether callbacks run on the I/O threads or a libuv loop, with
    requests pipelined on each I/O thread's connection or sent one at a time."""
    n = 3000
    c = make_cluster(3)
    flags = ["--window", "64", "--pipeline", str(pipeline)] + (["--loop"] if loop else [])
    load = Async(leader_first(c), "incr", "async:ctr", n, *flags)
    for _ in range(2):
        # The leader is found first, so that the kill follows the progress at once: batched, the
        # I/O threads are fast enough to finish the load while a slow test asks who leads.
        li = c.leader()
        load.wait_progress(400, "increments before the kill")
        c.kill(li)
        load.wait_progress(200, "increments after the kill")
        c.start(li)
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 30,
                 "the killed leader to follow again")
    done = load.finish()
    assert done["callbacks"] == done["submitted"] == n, done
    assert done["ok"] == n, (done, load.lines[-10:])
    assert done["last"] == n
    assert counter(c, "async:ctr") == n
    assert (done["pipelined"] > 0) == (pipeline > 1), done
    caught = done["resends"] + sum(int(info(p, "stats")["forwards_resent"]) +
                                   int(info(p, "stats")["forwards_rerun"]) for p in c.ports)
    assert caught > 0, "no request was caught by a kill: the test proved nothing"


def test_async_exactly_once_across_an_isolated_leader(make_cluster):
    """The leader cut off from the other members twice (its peer links stalled by the fault
    proxy; its clients still reach it) under 64 asynchronous INCRs in flight: it cannot
    commit, the others elect a leader, the writes it held time out or are refused, and the
    library sends them again under their session to whichever member leads: every request
    is acknowledged once and the counter equals their number. 20,000 of them: 2,000 were all
    acknowledged before the first cut on an idle machine, and no request was caught. The
    request deadline is 60 s, not the library's 10 s: this is about exactly-once, and on a
    loaded machine (CI beside a simulator campaign) 3 of 2,000 requests once ran out of 10 s
    during a cut, the other side's election and the backoffs, and ended NOT_APPLIED."""
    n = 20000
    c = make_cluster(3, {"partitions": 1}, proxied=True)
    # Smart routing off: in a proxied cluster the slot map names the proxies' ports.
    load = Async(leader_first(c), "incr", "iso:ctr", n, "--window", "64", "--no-routing",
                 "--timeout-ms", "60000")
    for _ in range(2):
        li = c.leader()
        load.wait_progress(300, "increments before the cut")
        c.net.partition([li])
        wait_for(lambda: c.leader(deadline_s=30, exclude=(li,)) is not None, 40,
                 "a leader among the others")
        load.wait_progress(150, "increments after the cut")
        c.net.heal()
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 30,
                 "the cut-off leader to follow again")
    done = load.finish()
    assert done["callbacks"] == done["submitted"] == n, done
    assert done["ok"] == n, (done, load.lines[-10:])
    assert done["last"] == n
    assert counter(c, "iso:ctr") == n
    caught = done["resends"] + sum(int(info(p, "stats")["forwards_resent"]) +
                                   int(info(p, "stats")["forwards_rerun"]) for p in c.ports)
    assert caught > 0, "no request was caught by a cut: the test proved nothing"


def test_async_without_sessions_every_request_has_a_status(make_cluster):
    """Sessions off, kill -9 of the leader under async load: no request is lost; each ends ok,
    unknown or not applied, and the counter lies between the acknowledged increments and those
    plus the unknown ones."""
    n = 2000
    c = make_cluster(3)
    load = Async(leader_first(c), "incr", "async:plain", n, "--no-sessions", "--window", "32")
    load.wait_progress(400, "increments before the kill")
    li = c.leader()
    c.kill(li)
    load.wait_progress(200, "increments after the kill")
    c.start(li)
    done = load.finish()
    assert done["callbacks"] == n
    assert done["ok"] + done["unknown"] + done["not_applied"] == n, done
    final = counter(c, "async:plain")
    assert done["ok"] <= final <= done["ok"] + done["unknown"], (done, final)


def test_replica_reads_go_readonly_to_every_member(make_cluster):
    """read_from REPLICA with four I/O threads: the reads are spread over the members (each
    thread's round robin starts elsewhere) on READONLY connections, and every one answers.
    64 outstanding without pipelining, so that the queue is never empty and every thread woken
    finds work (with 8 outstanding, pipelined or not, one thread could take them all while the
    others, woken late on a loaded machine, found the queue empty: a loaded run saw every read
    on one member)."""
    c = make_cluster(3)
    r = redis.Redis("127.0.0.1", c.ports[c.leader()], socket_timeout=10)
    r.set("rr:k", "v")
    before = [int(info(p, "stats")["total_commands_processed"]) for p in c.ports]
    done = Async(c.ports, "get", "rr:k", 2000, "--read-from", "replica", "--threads",
                 "4", "--window", "64", "--pipeline", "1").finish()
    assert done["ok"] == 2000, done
    # A read sent before its thread learnt the slot map goes to the member it connected to
    # first, not through the replica balancer: at most one per thread without pipelining.
    assert done["replica_reads"] >= 2000 - 4, done
    after = [int(info(p, "stats")["total_commands_processed"]) for p in c.ports]
    served = [a - b for a, b in zip(after, before)]
    assert sum(1 for s in served if s >= 100) >= 2, served


@pytest.mark.parametrize("hedge", [True, False], ids=["hedged", "not-hedged"])
def test_hedged_reads_rescue_reads_from_a_paused_replica(make_cluster, hedge):
    """Replica reads with a request deadline of 3 s, attempt timeout 30 s and heartbeats off (so
    that only hedging can move a read off a member that stopped answering); a follower is
    SIGSTOPped after 300 reads and stays stopped until the program has finished all of them.
    Not hedged: every I/O thread takes work (8 outstanding, 4 threads) and their round robins
    start on different members, so one reads from the stopped follower: its reads wait for it
    until their deadline and end TIMEOUT (or NOT_APPLIED, when the frame it waited on was the
    one before the read: READONLY on a new connection). Hedged after 20 ms (2 outstanding over 6 threads, so
    threads are free to send the copies, and two start on the stopped follower): the reads that went to the stopped follower are answered by their
    copies from another member, so every read completes before its deadline and hedges won.
    Counts, not times (the deadline is 150 times the hedge delay); the read p99 with and without
    hedging is a benchmark figure (docs/client.md)."""
    c = make_cluster(3)
    r = redis.Redis("127.0.0.1", c.ports[c.leader()], socket_timeout=10)
    r.set("hedge:k", "v")
    li = c.leader()
    victim = [i for i in range(3) if i != li][0]
    n = 3000
    flags = ["--read-from", "replica", "--attempt-timeout-ms", "30000", "--timeout-ms", "3000",
             "--heartbeat-ms", "0", "--pipeline", "1"]
    # Hedged: 6 I/O threads (2 of them start on the stopped follower) for 2 outstanding reads.
    flags += (["--hedge-ms", "20", "--threads", "6", "--window", "2"] if hedge
              else ["--threads", "4", "--window", "8"])
    load = Async(c.ports, "get", "hedge:k", n, *flags)
    load.wait_progress(300, "reads before the stop")
    c.kill(victim, signal.SIGSTOP)
    try:
        wait_for(lambda: load.proc.poll() is not None, 120, "every read to end")
    finally:
        c.kill(victim, signal.SIGCONT)
    done = load.finish()
    assert done["callbacks"] == n, (done, load.lines[-10:])
    if hedge:
        assert done["ok"] == n and done["timeout"] == 0, (done, load.lines[-10:])
        assert done["hedges"] >= 1 and done["hedge_wins"] >= 1, done
    else:
        # TIMEOUT for a read sent to it; NOT_APPLIED when what it waited on was the frame
        # before the read (READONLY on a new connection, the slot map's refresh)
        stuck = done["timeout"] + done["not_applied"]
        assert stuck >= 1 and done["ok"] + stuck == n, done
        assert done["hedges"] == 0, done


def test_load_shedding_answers_busy_at_once(make_cluster):
    """max_outstanding 16 and 400 INCRs submitted at once: all beyond the first 16 are refused
    HALYARD_BUSY at the call (nothing sent), the 16 accepted complete, and the counter is 16."""
    c = make_cluster(1)
    done = Async(c.ports, "shed", "shed:ctr", 400, "--max-outstanding", "16").finish()
    assert done["submitted"] == 16 and done["busy"] == 384 and done["shed"] == 384, done
    assert done["ok"] == 16 and done["callbacks"] == 16, done
    assert counter(c, "shed:ctr") == 16


def test_a_new_connection_pipelines_all_but_the_first_request(make_cluster):
    """64 INCRs submitted at once to a new client (default 4 I/O threads, pipeline_max 64): the
    first I/O thread sends one the normal way (its connection, slot map and session), then
    pipelines the rest on that connection, and no other thread starts for them (no more than a
    batch waits, and a thread's first request does not count as a slow one). Before, the
    threads shared them out, and each sent its share one at a time, opening a connection and a
    session of its own: none was pipelined."""
    c = make_cluster(1)
    done = Async(c.ports, "shed", "pipe:ctr", 64, "--pipeline", "64").finish()
    assert done["ok"] == 64 and done["callbacks"] == 64, done
    assert done["pipelined"] >= 60, done
    assert counter(c, "pipe:ctr") == 64


def test_member_inflight_bound_sheds_busy_and_nothing_of_it_runs(make_cluster):
    """max_inflight_per_member 2 under 3000 INCRs, 64 outstanding over 4 I/O threads (which
    pipeline): requests beyond two in flight on the one member end HALYARD_BUSY without being
    sent, every request gets exactly one outcome, and the counter equals the acknowledged
    increments exactly (a shed one never ran)."""
    c = make_cluster(1)
    done = Async(c.ports, "incr", "mshed:ctr", 3000, "--max-inflight", "2", "--threads", "4",
                 "--window", "64").finish()
    assert done["callbacks"] == 3000, done
    # (member_sheds is read from the I/O threads' counters, which may lag their last request)
    assert done["busy_outcomes"] >= 1 and done["member_sheds"] >= 1, done
    assert done["ok"] + done["busy_outcomes"] == 3000, done
    assert counter(c, "mshed:ctr") == done["ok"]


def test_async_lifecycle_events_merge_the_io_threads(make_cluster):
    """A program that uses only the asynchronous API gets the lifecycle events of its I/O
    threads' connections, merged into the client's: kill -9 of a one-node cluster under 16
    INCRs in flight over 4 I/O threads (no pipelining: each thread always has one running),
    then its restart: CLIENT_CONNECTED, CLIENT_DISCONNECTED, CLIENT_CONNECTED once each (not
    once per thread), between STARTED and SHUTTING_DOWN; every increment applied once."""
    n = 3000
    c = make_cluster(1)
    load = Async(c.ports, "incr", "ev:ctr", n, "--events", "--window", "16", "--threads", "4",
                 "--pipeline", "1", "--timeout-ms", "60000")
    load.wait_progress(300, "increments before the kill")
    c.kill(0)
    wait_for(lambda: any("CLIENT_DISCONNECTED" in x for x in load.lines) or
             load.proc.poll() is not None, 30, "CLIENT_DISCONNECTED")
    c.start(0)
    load.wait_progress(300, "increments after the restart")
    done = load.finish()
    assert done["ok"] == n, (done, load.lines[-10:])
    assert counter(c, "ev:ctr") == n
    # (The pushed membership events, LEADER_CHANGED at the restart, come from the heartbeat
    # thread and are left out here.)
    lifecycle = ("STARTING", "STARTED", "CLIENT_", "SHUTTING_DOWN", "SHUTDOWN")
    events = [x.split()[1] for x in load.lines
              if x.startswith("event ") and x.split()[1].startswith(lifecycle)]
    assert events == ["STARTING", "STARTED", "CLIENT_CONNECTED", "CLIENT_DISCONNECTED",
                      "CLIENT_CONNECTED", "SHUTTING_DOWN", "SHUTDOWN"], events


@pytest.mark.parametrize("loop", [False, True], ids=["io-threads", "libuv-loop"])
def test_close_cancels_what_did_not_run(make_cluster, loop):
    """halyard_close right after 500 submissions: every accepted request gets its callback;
    what never ran is CANCELLED, and the counter equals the acknowledged plus at most the
    unknown increments (a cancelled one was never applied)."""
    c = make_cluster(1)
    flags = ["--loop"] if loop else []
    done = Async(c.ports, "close", "close:ctr", 500, *flags).finish()
    assert done["callbacks"] == done["submitted"] == 500, done
    assert done["cancelled"] >= 1, done
    assert done["ok"] + done["unknown"] + done["cancelled"] + done["not_applied"] == 500, done
    final = counter(c, "close:ctr")
    assert done["ok"] <= final <= done["ok"] + done["unknown"], (done, final)


def test_heartbeats_find_a_stopped_member_and_route_around_it(make_cluster):
    """Heartbeats every 100 ms, dead after 500 ms, attempt timeout 5 s, no hedging: a member
    SIGSTOPped under replica reads is found dead by its heartbeats; the reads running on it
    leave it at once and the others go around it (its breaker is open), so no read waits for
    the 5 s attempt timeout, and every read answers."""
    c = make_cluster(3)
    r = redis.Redis("127.0.0.1", c.ports[c.leader()], socket_timeout=10)
    r.set("hb:k", "v")
    li = c.leader()
    # Batches of 2 out of 8 outstanding: more than a batch waits, so three I/O threads are
    # engaged, each on a member of its balancer's choosing (the leader is one: with one thread
    # all reads could go to it); and pipelined, so a round caught on the stopped member is cut
    # short by the heartbeats too.
    n = 200000
    load = Async(c.ports, "get", "hb:k", n, "--read-from", "replica", "--threads", "4",
                 "--window", "8", "--pipeline", "2", "--attempt-timeout-ms", "5000",
                 "--timeout-ms", "20000", "--heartbeat-ms", "100,500")
    load.wait_progress(300, "reads before the stop")

    # The victim is the follower the reads go to most now: an I/O thread keeps reading from the
    # member it is on, and if every busy one were elsewhere, no read would be caught on the
    # stopped member (it happened once in a loaded run). Counted by the commands each serves,
    # not by its connections: a thread engaged once (its connection open) may sit idle.
    replicas = [i for i in range(3) if i != li]

    def served(i):
        return int(info(c.ports[i], "stats")["total_commands_processed"])

    before = {i: served(i) for i in replicas}
    wait_for(lambda: max(served(i) - before[i] for i in replicas) >= 200 or
             load.proc.poll() is not None, 30, "reads served by a replica")
    victim = max(replicas, key=lambda i: served(i) - before[i])
    c.kill(victim, signal.SIGSTOP)
    try:
        wait_for(lambda: load.hb_downs >= 1 or load.proc.poll() is not None, 30,
                 "the heartbeats to find the stopped member dead")
        # An I/O thread takes the verdict at the start of its next request: the member stays
        # stopped until one has (its breaker opened), else the test could resume it before any
        # thread looked, and the thread would rightly find it alive (a CI run saw 0 opens so).
        wait_for(lambda: load.opens >= 1 or load.proc.poll() is not None, 30,
                 "an I/O thread to open the stopped member's breaker")
        load.wait_progress(1000, "reads after it was found dead", deadline_s=60)
    finally:
        c.kill(victim, signal.SIGCONT)
    done = load.finish()
    assert done["ok"] == n, (done, load.lines[-10:])
    # The heartbeats found it dead, and its breaker opened in the I/O threads that began a
    # request before it was resumed: one each (a thread that was busy or idle until the member
    # answered again opens none, as it should: it was alive when it looked).
    assert done["heartbeat_downs"] >= 1, done
    assert done["breaker_opens"] >= 1, done
    assert done["resends"] >= 1, done  # a read was caught on the stopped member and moved
    assert done["max_ms"] < 5000, done  # none waited for the attempt timeout


def test_max_staleness_keeps_reads_off_a_replica_cut_off_from_its_leader(make_cluster):
    """read_from REPLICA with max_staleness_ms: a follower cut off from the others (the client
    still reaches it) keeps an old value while the leader takes a new one. Without the bound some
    reads return the old value (the control: this test can fail); with it, once the heartbeats
    have measured the members, none does, and reads still go to the replicas within it."""
    c = make_cluster(3, proxied=True)
    li = c.leader()
    fi = next(i for i in range(3) if i != li)
    redis.Redis("127.0.0.1", c.ports[li], socket_timeout=10).set("st:k", "old")

    def follower_has_old():
        f = redis.Redis("127.0.0.1", c.ports[fi], socket_timeout=2)
        f.execute_command("READONLY")
        return f.get("st:k") == b"old"

    wait_for(follower_has_old, 10, "the follower to apply the first value")
    c.net.partition([fi])
    redis.Redis("127.0.0.1", c.ports[li], socket_timeout=10).set("st:k", "new")
    # The client reaches each member directly (smart routing off: in a proxied cluster the slot
    # map names the proxies' ports), the cut-off follower first: a replica read stays on the
    # member it is connected to while that one is eligible.
    ports = [c.ports[fi]] + [p for i, p in enumerate(c.ports) if i != fi]
    reads = ["--read-from", "replica", "--no-routing", "--threads", "4", "--window", "8",
             "--expect", "new"]
    ctrl = Async(ports, "get", "st:k", 400, *reads).finish()
    assert ctrl["ok"] == 400 and ctrl["mismatch"] > 0, ctrl
    done = Async(ports, "get", "st:k", 400, *reads, "--heartbeat-ms", "100,2000",
                 "--max-staleness-ms", "500", "--warmup-ms", "600").finish()
    assert done["ok"] == 400 and done["mismatch"] == 0, done
    assert done["replica_reads"] > 0, done


def test_max_staleness_heartbeats_authenticate(servers):
    """With a password, the staleness heartbeats AUTH before CLUSTER SHARDS (which, unlike PING,
    needs it): a lone node, leader of everything, is measured within the bound, so replica
    reads go to it READONLY; unmeasured, they would all go the linearizable way."""
    s = servers.start({"requirepass": "pw"})
    done = Async([s.port], "get", "auth:k", 200, "--password", "pw", "--read-from", "replica",
                 "--heartbeat-ms", "100,2000", "--max-staleness-ms", "500", "--warmup-ms",
                 "500").finish()
    assert done["ok"] == 200, done
    assert done["replica_reads"] > 0, done

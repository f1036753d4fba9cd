"""libhalyard against real clusters (issue 15): a C program (tests/tools/hy_client_load.c) increments
a counter through the library while members are killed with kill -9, stopped with SIGSTOP, or
come back. With exactly-once sessions (the default) every increment is acknowledged and the
final counter equals the number issued, exactly: no loss, no double apply. Without sessions a
write lost with its connection is reported HALYARD_UNKNOWN, never retried blindly. And the
library works against a plain Redis (Debian's redis-server), which knows no sessions."""

import os
import signal
import subprocess
import threading
import time

import pytest
import redis

from cluster import Cluster, ClusterSet, info
from conftest import RawConn, free_port, start_redis_server, wait_for


def load_bin():
    return os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "tools", "hy_client_load")


@pytest.fixture
def make_cluster(tmp_path_factory):
    clusters = ClusterSet(tmp_path_factory)

    def make(n, extra=None):
        return clusters.start(Cluster, n, extra or {})

    yield make
    clusters.stop_all()


class Load:
    """hy_client_load running in the background; `progress` follows its output."""

    def __init__(self, ports, key, n, *flags):
        addrs = ",".join("127.0.0.1:%d" % p for p in ports)
        self.proc = subprocess.Popen([load_bin(), addrs, key, str(n)] + list(flags),
                                     stdout=subprocess.PIPE, text=True)
        self.progress, self.lines, self.done = 0, [], None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            self.lines.append(line)
            if line.startswith("progress "):
                self.progress = int(line.split()[1])
            elif line.startswith("done "):
                self.done = dict(kv.split("=") for kv in line.split()[1:])

    def wait_progress(self, more, what, deadline_s=60):
        mark = self.progress
        wait_for(lambda: self.progress >= mark + more or self.proc.poll() is not None,
                 deadline_s, what)
        assert self.proc.poll() is None or self.done is not None, self.lines[-5:]

    def finish(self, deadline_s=120):
        rc = self.proc.wait(timeout=deadline_s)
        self.reader.join(10)
        assert rc == 0, (rc, self.lines[-10:])
        assert self.done is not None, self.lines[-10:]
        return {k: int(v) for k, v in self.done.items()}


def leader_first(c):
    """The members' ports with the leader's first: the client starts on it, so the first kill
    cuts its own connection (the library's re-send), later ones may hit a follower it uses
    (the follower's re-send)."""
    li = c.leader()
    return [c.ports[li]] + [p for i, p in enumerate(c.ports) if i != li]


def resends_seen(c, done):
    """Requests caught by a failure, on the client and on the members (not vacuous)."""
    stats = [info(p, "stats") for p in c.ports]
    return done["resends"] + sum(int(s["forwards_resent"]) + int(s["forwards_rerun"])
                                 for s in stats)


def counter(c, key):
    return int(redis.Redis("127.0.0.1", c.ports[c.leader()], socket_timeout=10).get(key) or 0)


def test_exactly_once_across_leader_kills(make_cluster):
    """kill -9 of the leader three times (restarting it each time) under a loop of INCRs
    through libhalyard: every INCR is acknowledged, the last reply and the counter equal the
    number issued."""
    n = 3000
    c = make_cluster(3)
    load = Load(leader_first(c), "lib:ctr", n)
    for _ in range(3):
        load.wait_progress(300, "increments before the kill")
        li = c.leader()
        c.kill(li)
        load.wait_progress(100, "increments after the kill")
        c.start(li)
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 30,
                 "the killed leader to follow again")
    done = load.finish()
    assert done["ok"] == n, (done, load.lines[-10:])
    assert done["unknown"] == done["not_applied"] == done["error"] == 0, done
    assert done["last"] == n
    assert counter(c, "lib:ctr") == n
    assert resends_seen(c, done) > 0, "no request was caught by a kill: the test proved nothing"


def test_exactly_once_across_a_stopped_leader(make_cluster):
    """SIGSTOP of the leader (its connections stay open, nothing answers) until the others
    elect a new one and the load goes on, then SIGCONT: still exactly once."""
    n = 1500
    c = make_cluster(3)
    load = Load(leader_first(c), "lib:st", n)
    for _ in range(2):
        load.wait_progress(300, "increments before the stop")
        li = c.leader()
        c.kill(li, signal.SIGSTOP)
        try:
            c.leader(deadline_s=20, exclude=(li,))
            load.wait_progress(100, "increments with the leader stopped")
        finally:
            c.kill(li, signal.SIGCONT)
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 30,
                 "the stopped leader to follow again")
    done = load.finish()
    assert done["ok"] == n and done["unknown"] == 0, (done, load.lines[-10:])
    assert counter(c, "lib:st") == n
    assert resends_seen(c, done) > 0


def test_without_sessions_a_lost_write_is_unknown_not_retried(make_cluster):
    """With sessions off, a write whose connection was lost after sending is reported unknown
    (HALYARD_UNKNOWN) and never re-sent: the counter lies between the acknowledged
    increments and those plus the unknown ones."""
    n = 2000
    c = make_cluster(3)
    load = Load(leader_first(c), "lib:plain", n, "--no-sessions")
    for _ in range(3):
        load.wait_progress(300, "increments before the kill")
        li = c.leader()
        c.kill(li)
        load.wait_progress(100, "increments after the kill")
        c.start(li)
        wait_for(lambda: info(c.ports[li])["raft_role"] == "follower", 30,
                 "the killed leader to follow again")
    done = load.finish()
    assert done["sessions"] == 0
    final = counter(c, "lib:plain")
    assert done["ok"] <= final <= done["ok"] + done["unknown"], (done, final)
    assert done["ok"] + done["unknown"] + done["not_applied"] == n, done


@pytest.mark.parametrize("cooldown_ms", [60000, 1000], ids=["still-open", "half-open"])
def test_breaker_opens_and_half_opens(make_cluster, cooldown_ms):
    """The client's members are the two followers (smart routing off, heartbeats off, so only
    failures move breakers; a breaker opens at the first failure). kill -9 of the first: its
    breaker opens and the increments go on through the second. The first restarted, then kill
    -9 of the second. Once the cool-down has passed the first's breaker is half-open: the client
    takes it as a member like any other (no skip) and its answer closes it. Before (the 60 s
    control) it is still open: skipped, and tried only because every breaker is then open.
    Either way every increment is applied once."""
    n = 5000
    c = make_cluster(3)
    li = c.leader()
    f1, f2 = [i for i in range(3) if i != li]
    load = Load([c.ports[f1], c.ports[f2]], "brk:ctr", n, "--no-routing", "--heartbeat-ms", "0",
                "--breaker", "1,%d" % cooldown_ms)
    load.wait_progress(100, "increments through the first follower")
    c.kill(f1)
    opened = time.monotonic()
    load.wait_progress(100, "increments through the second follower")
    c.start(f1)
    wait_for(lambda: info(c.ports[f1])["raft_role"] == "follower", 30,
             "the first follower to follow again")
    # The cool-down is time by definition: wait it out (the short one) before the second kill.
    if cooldown_ms < 10000:
        wait_for(lambda: time.monotonic() > opened + cooldown_ms / 1000 + 0.5, 10,
                 "the first follower's cool-down")
    c.kill(f2)
    load.wait_progress(100, "increments through the first follower again")
    done = load.finish()
    assert done["ok"] == n and done["unknown"] == done["not_applied"] == 0, (done, load.lines[-5:])
    assert counter(c, "brk:ctr") == n
    assert done["breaker_opens"] >= 2, done  # the first's, then the second's
    if cooldown_ms < 10000:
        assert done["breaker_skips"] == 0, done  # half-open: taken, not skipped
    else:
        assert done["breaker_skips"] >= 1, done  # still open: skipped


def test_smart_routing_sends_keys_to_the_leader(make_cluster):
    """Given the followers' addresses first, the client reads the slot map (CLUSTER SLOTS) and
    sends its requests to the member serving the slot, the leader: the followers forward
    (almost) nothing. Without smart routing they forward every request."""
    c = make_cluster(3)
    li = c.leader()
    followers_first = [p for i, p in enumerate(c.ports) if i != li] + [c.ports[li]]

    def forwarded():
        return sum(int(info(c.ports[i], "stats")["forwards_sent"]) for i in range(3) if i != li)

    before = forwarded()
    done = Load(followers_first, "route:on", 500).finish()
    assert done["ok"] == 500 and done["topology"] >= 1 and done["routed"] >= 1, done
    assert forwarded() - before <= 2, "followers forwarded %d requests" % (forwarded() - before)
    before = forwarded()
    done = Load(followers_first, "route:off", 500, "--no-routing").finish()
    assert done["ok"] == 500 and done["topology"] == 0, done
    assert forwarded() - before >= 500   # the session's OPEN too


def test_against_plain_redis(tmp_path):
    """Debian's redis-server knows no HY.SESSION: the library notices and sends writes plain."""
    s = start_redis_server(tmp_path)
    try:
        load = Load([s.port], "lib:redis", 200)
        done = load.finish()
        assert done["ok"] == 200 and done["last"] == 200 and done["sessions"] == 0, done
    finally:
        s.stop()


def test_unreachable_cluster_is_not_applied_by_the_deadline():
    """No member listens: every request ends HALYARD_UNREACHABLE (not applied) at its deadline
    (here 300 ms), after reconnect attempts with backoff, never hanging."""
    ports = [free_port(), free_port()]
    load = Load(ports, "k", 3, "--timeout-ms", "300")
    done = load.finish(deadline_s=30)
    assert done["not_applied"] == 3 and done["ok"] == 0, done
    unreachable = [x for x in load.lines if x.startswith("status cluster unreachable")]
    assert len(unreachable) == 3, load.lines


def start_client(exe, env, args):
    """Runs the program exe with args; returns the process, the list its output lines go into
    as they come, and the thread that reads them."""
    proc = subprocess.Popen([exe] + args, env=env, stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(l.strip() for l in proc.stdout),
                              daemon=True)
    reader.start()
    return proc, lines, reader


def install_and_build(tmp_path, example):
    """make install PREFIX=tmp, then builds examples/<example>.c with pkg-config against the
    install; returns the program and the environment to run it with."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    prefix = str(tmp_path / "prefix")
    r = subprocess.run(["make", "-s", "install", "PREFIX=" + prefix], cwd=root,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "halyard"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    exe = str(tmp_path / example)
    r = subprocess.run(["cc", "-Wall", "-Werror", os.path.join(root, "examples", example + ".c"),
                        "-o", exe] + flags, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe, dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib")), prefix


def test_installed_library_builds_the_quickstart(tmp_path, servers):
    """make install PREFIX=... installs the header, both libraries and halyard.pc; the
    quickstart example builds with pkg-config against the install (shared library) and runs
    against a halyard node, its typed helpers exported."""
    exe, run_env, prefix = install_and_build(tmp_path, "quickstart")
    s = servers.start()
    r = subprocess.run([exe, "127.0.0.1:%d" % s.port], env=run_env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # The typed helpers (SET, GET, INCRBY, DEL) and halyard_command (APPEND) from the install.
    assert "GET: ok (hello from libhalyard)" in r.stdout and "INCR: 1" in r.stdout, r.stdout
    assert "APPEND: 22" in r.stdout and "DEL: ok (1)" in r.stdout, r.stdout
    # It is the installed shared library that ran, not a copy linked in.
    ldd = subprocess.run(["ldd", exe], env=run_env, capture_output=True, text=True).stdout
    assert os.path.join(prefix, "lib", "libhalyard.so.0") in ldd, ldd


def test_failover_client_moves_to_the_secondary_cluster(tmp_path, servers):
    """Seed 002 in C (examples/failover_client.c, built from the install): writing to the
    primary cluster, which is then killed; the client prints CLIENT_DISCONNECTED,
    CLIENT_CONNECTED and CLIENT_CHANGED_CLUSTER in that order and goes on writing to the
    secondary with no error handling in the loop. At most the write in flight is unknown."""
    exe, run_env, _ = install_and_build(tmp_path, "failover_client")
    primary, secondary = servers.start(), servers.start()
    proc, lines, reader = start_client(exe, run_env, [
        "--primary", "127.0.0.1:%d" % primary.port, "--secondary",
        "127.0.0.1:%d" % secondary.port, "--writes", "400", "--interval-ms", "5"])
    wait_for(lambda: "progress 100" in lines or proc.poll() is not None, 30, "100 writes")
    primary.send_signal(signal.SIGKILL)
    primary.wait_exit()
    primary._stopped = True
    killed_at = len(lines)
    wait_for(lambda: any(l.startswith("CLIENT_CHANGED_CLUSTER") for l in lines[killed_at:]),
             10, "the client to be on the secondary cluster")
    assert proc.wait(timeout=120) == 0
    reader.join(10)
    events = [l.split()[0] + " " + l.split()[1] for l in lines
              if l.startswith(("CLIENT_", "STARTING", "STARTED", "SHUTTING", "SHUTDOWN"))]
    assert events[:3] == ["STARTING cluster=primary", "STARTED cluster=primary",
                          "CLIENT_CONNECTED cluster=primary"], events
    assert events[3:6] == ["CLIENT_DISCONNECTED cluster=primary",
                           "CLIENT_CONNECTED cluster=secondary",
                           "CLIENT_CHANGED_CLUSTER cluster=secondary"], events
    assert events[-2:] == ["SHUTTING_DOWN cluster=secondary", "SHUTDOWN cluster=secondary"]
    done_line = [l for l in lines if l.startswith("done ")]
    assert done_line, lines[-5:]
    done = dict(kv.split("=") for kv in done_line[0].split()[1:])
    assert int(done["other"]) == 0 and int(done["unknown"]) <= 1, lines[-5:]
    assert int(done["ok"]) + int(done["unknown"]) == 400
    keys = int(redis.Redis("127.0.0.1", secondary.port, socket_timeout=10).dbsize())
    assert 0 < keys <= 300, keys


def test_failover_client_fails_back_to_the_primary(tmp_path, servers):
    """With --failback-ms: the primary is killed (the client moves to the secondary), then a
    primary comes back on the same port; after the hysteresis the client moves back
    (CLIENT_CHANGED_CLUSTER cluster=primary) and its later writes land there, with no error
    handling in the loop."""
    exe, run_env, _ = install_and_build(tmp_path, "failover_client")
    primary, secondary = servers.start(), servers.start()
    port = primary.port
    proc, lines, reader = start_client(exe, run_env, [
        "--primary", "127.0.0.1:%d" % port, "--secondary", "127.0.0.1:%d" % secondary.port,
        "--writes", "1500", "--interval-ms", "5", "--failback-ms", "1500"])
    wait_for(lambda: "progress 100" in lines or proc.poll() is not None, 30, "100 writes")
    primary.send_signal(signal.SIGKILL)
    primary.wait_exit()
    primary._stopped = True
    wait_for(lambda: "CLIENT_CHANGED_CLUSTER cluster=secondary" in " ".join(lines), 10,
             "the client to be on the secondary cluster")
    back = servers.start(port=port)
    wait_for(lambda: "CLIENT_CHANGED_CLUSTER cluster=primary" in " ".join(lines), 30,
             "the client to fail back to the primary")
    assert proc.wait(timeout=120) == 0
    reader.join(10)
    events = [l.split()[0] + " " + l.split()[1] for l in lines if l.startswith("CLIENT_")]
    assert events == ["CLIENT_CONNECTED cluster=primary", "CLIENT_DISCONNECTED cluster=primary",
                      "CLIENT_CONNECTED cluster=secondary",
                      "CLIENT_CHANGED_CLUSTER cluster=secondary",
                      "CLIENT_CHANGED_CLUSTER cluster=primary"], events
    done = dict(kv.split("=") for kv in [l for l in lines if l.startswith("done ")][0].split()[1:])
    assert int(done["other"]) == 0 and int(done["unknown"]) <= 1, lines[-5:]
    assert int(redis.Redis("127.0.0.1", back.port, socket_timeout=10).dbsize()) > 0


@pytest.mark.parametrize("events_ms", [100, 0], ids=["polled", "pushed"])
def test_membership_listener_sees_a_member_fail(tmp_path, make_cluster, events_ms):
    """The seed-002 program's listener gets MEMBER_SUSPECT and MEMBER_FAILED for a killed member
    of the cluster it writes to, named as the cluster names it, while its writes go on: polled
    (--events-ms 100: HALYARD EVENTS at the start of requests), or pushed (--events-ms 0, no
    polling at all: the events come from the client's subscription to __halyard__:events on a
    member of its list, server_events, on by default)."""
    exe, run_env, _ = install_and_build(tmp_path, "failover_client")
    c = make_cluster(3)
    li = c.leader()
    victim = (li + 1) % 3
    addrs = ",".join("127.0.0.1:%d" % c.ports[i] for i in range(3) if i != victim)
    proc, lines, reader = start_client(exe, run_env, [
        "--primary", addrs, "--secondary", "127.0.0.1:1", "--writes", "1200", "--interval-ms",
        "5", "--events-ms", str(events_ms)])
    wait_for(lambda: "progress 100" in lines or proc.poll() is not None, 30, "100 writes")
    if events_ms == 0:  # pub/sub keeps nothing for later: the subscription first
        def subscribers():
            return sum(dict(redis.Redis("127.0.0.1", c.ports[i], socket_timeout=10)
                            .pubsub_numsub("__halyard__:events")).get(b"__halyard__:events", 0)
                       for i in range(3) if i != victim)
        wait_for(lambda: subscribers() >= 1, 30, "the client's subscription to the events")
    c.kill(victim)
    name = c.names[victim]
    wait_for(lambda: any(l.startswith("MEMBER_FAILED") and "member=" + name in l
                         for l in lines), 30, "the listener to hear %s failed" % name)
    mine = [l.split()[0] for l in lines if "member=" + name in l]
    assert mine.index("MEMBER_SUSPECT") < mine.index("MEMBER_FAILED"), lines
    assert proc.wait(timeout=120) == 0
    reader.join(10)
    done = dict(kv.split("=") for kv in [l for l in lines if l.startswith("done ")][0].split()[1:])
    assert int(done["other"]) == 0 and int(done["unknown"]) == 0, lines[-5:]


def test_exactly_once_on_a_partitioned_cluster(make_cluster):
    """On a cluster with 4 partitions, INCRs through libhalyard while the leader of the key's
    partition is killed (kill -9) three times: the library opens its session in that
    partition, and every INCR is applied exactly once."""
    n = 2000
    c = make_cluster(3, {"partitions": 4})

    def partition_leader():
        for i, s in enumerate(c.nodes):
            if not s.alive():
                continue
            with RawConn(c.ports[i]) as conn:
                slot = conn.cmd("CLUSTER", "KEYSLOT", "lib:part")
                for lo, hi, master, *rest in conn.cmd("CLUSTER", "SLOTS"):
                    if lo <= slot <= hi and c.nodes[c.ports.index(master[1])].alive():
                        return c.ports.index(master[1])
        return None

    wait_for(lambda: partition_leader() is not None, 20, "a leader for the key's partition")
    load = Load(c.ports, "lib:part", n)
    for _ in range(3):
        load.wait_progress(200, "increments before the kill")
        li = partition_leader()
        c.kill(li)
        load.wait_progress(100, "increments after the kill")
        c.start(li)
        wait_for(lambda: partition_leader() is not None, 30, "the partition led again")
    done = load.finish()
    assert done["ok"] == n, (done, load.lines[-10:])
    assert done["unknown"] == done["not_applied"] == done["error"] == 0, done
    assert done["last"] == n
    assert int(redis.Redis(port=c.ports[partition_leader()], socket_timeout=10).get("lib:part")) == n
    assert resends_seen(c, done) > 0, "no request was caught by a kill: the test proved nothing"

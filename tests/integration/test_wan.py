"""Links between clusters (issue 18, first slice; docs/wan.md): an active-passive link from a
partitioned source cluster to a target cluster, over real processes on 127.0.0.1.

The source has 3 nodes and 4 partitions (a leader to kill -9 while the others carry on); the
target has 1 node and 2 partitions: a different count, so that every batch is split by key
slot, and one node starts fast and restarts fast (the link surviving the target's restart is
what is tested, not the target's own replication).
"""

import json
import os
import signal
import subprocess
import threading

import pytest

from cluster import Cluster, is_error, SECRET
from conftest import RawConn, RespError, wait_for

SRC_PARTS = 4
DST_PARTS = 2
SLOTS = 16384


@pytest.fixture
def pair(tmp_path_factory):
    made = []

    def make(src_nodes=3, dst_nodes=1, src_extra=None):
        dst = Cluster(tmp_path_factory, dst_nodes,
                      {"partitions": DST_PARTS, "cluster-name": "west", "requirepass": "dst-pass"})
        made.append(dst)
        dst.start_all()
        extra = {"partitions": SRC_PARTS, "cluster-name": "east"}
        extra.update(src_extra or {})
        src = Cluster(tmp_path_factory, src_nodes, extra)
        made.append(src)
        src.start_all()
        return src, dst

    yield make
    errors = []
    for c in made:
        errors += c.stop_all()
    assert not errors, "\n".join(errors)


def cmd(port, *args, password=None):
    with RawConn(port, timeout=5.0) as c:
        if password:
            c.cmd("AUTH", password)
        return c.cmd(*args)


def dump_all(port, password=None):
    """Every key of the cluster node at `port` with its type and value, as comparable data."""
    out = {}
    with RawConn(port, timeout=10.0) as c:
        if password:
            c.cmd("AUTH", password)
        for k in c.cmd("KEYS", "*"):
            t = c.cmd("TYPE", k)
            if t == "string":
                v = c.cmd("GET", k)
            elif t == "hash":
                flat = c.cmd("HGETALL", k)
                v = tuple(sorted(zip(flat[0::2], flat[1::2])))
            elif t == "list":
                v = tuple(c.cmd("LRANGE", k, 0, -1))
            elif t == "set":
                v = tuple(sorted(c.cmd("SMEMBERS", k)))
            elif t == "zset":
                v = tuple(c.cmd("ZRANGE", k, 0, -1, "WITHSCORES"))
            else:
                v = None
            ttl = c.cmd("PTTL", k)
            out[k] = (t, v, ttl > 0)
    return out


def add_link(src, dst, name="dr"):
    got = []

    def added():
        got[:] = [cmd(src.ports[0], "HALYARD", "WAN", "ADD", name, "127.0.0.1:%d" % (dst.ports[0] + 10000),
                      "MODE", "active-passive", "SECRET", SECRET)]
        return not is_error(got[0], "TRYAGAIN")  # no metadata leader yet

    wait_for(added, 20, "a metadata leader to take the link")
    assert got[0] == "OK", got

    # Every source node knows the link (it is in the metadata group).
    def known():
        return all(name in status_text(p) for p in src.ports)

    wait_for(known, 10, "every source node to know the link")


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def status_text(port):
    return text(cmd(port, "HALYARD", "WAN", "STATUS"))


def status_json(port):
    return json.loads(text(cmd(port, "HALYARD", "WAN", "STATUS", "JSON")))


def wait_converged(src, dst, deadline_s=30, live=None):
    live = live if live is not None else range(len(src.ports))
    port = src.ports[list(live)[0]]
    last = {}

    def same():
        a = dump_all(port)
        b = dump_all(dst.ports[0], password="dst-pass")
        last["diff"] = sorted(set(a.items()) ^ set(b.items()), key=repr)[:5] if a != b else None
        return a == b

    try:
        wait_for(same, deadline_s, "the target to hold the source's content", interval=0.2)
    except AssertionError:
        for i in live:
            print("source node %d:" % i, status_text(src.ports[i]))
        print("first differences:", last.get("diff"))
        for nd in list(src.nodes) + list(dst.nodes):
            if nd is not None:
                print(nd.log_path, open(nd.log_path).read()[-3000:])
        raise
    return last


def test_link_definitions_replicated_and_kept_across_restarts(pair):
    src, dst = pair()
    add_link(src, dst)
    st = status_json(src.ports[1])
    assert [l["name"] for l in st["links"]] == ["dr"]
    link = st["links"][0]
    assert link["mode"] == "active-passive"
    assert link["targets"] == "127.0.0.1:%d" % (dst.ports[0] + 10000)
    assert link["secret"] == "given"  # never shown
    assert "dst-pass" not in text(cmd(src.ports[2], "HALYARD", "WAN", "STATUS", "JSON"))
    # Bad definitions are refused.
    assert is_error(cmd(src.ports[0], "HALYARD", "WAN", "ADD", "x", "nohost"), "ERR invalid target")
    assert is_error(cmd(src.ports[0], "HALYARD", "WAN", "ADD", "x", "h:1", "MODE", "both"),
                    "ERR MODE is active-passive or active-active")
    assert is_error(cmd(src.ports[0], "HALYARD", "WAN", "ADD", "x", "h:1", "POLICY", "*",
                        "DISCARD"), "ERR POLICY needs MODE active-active")
    assert is_error(cmd(src.ports[0], "HALYARD", "WAN", "ADD", "x", "h:1", "MODE", "active-active",
                        "POLICY", "*", "NEWEST"), "ERR unknown policy")
    # The whole source restarts: the link is still there (the metadata group's log/snapshot).
    for i in range(3):
        src.kill(i, signal.SIGTERM)
    src.start_all()
    wait_for(lambda: all("link dr:" in status_text(p) for p in src.ports), 20,
             "the link back after the restart")
    # halyctl speaks it too.
    halyctl = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
    out = subprocess.run([halyctl, "-p", str(src.ports[0]), "wan", "status"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0 and "link dr: active-passive" in out.stdout, out
    out = subprocess.run([halyctl, "-p", str(src.ports[0]), "wan", "remove", "dr"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out
    wait_for(lambda: all("no WAN links" in status_text(p) for p in src.ports),
             10, "the link gone everywhere")
    out = subprocess.run([halyctl, "-p", str(src.ports[0]), "wan", "add", "dr2", "--to",
                          "127.0.0.1:%d" % (dst.ports[0] + 10000), "--secret", SECRET],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out


def test_writes_reach_the_target(pair):
    src, dst = pair()
    add_link(src, dst)
    with RawConn(src.ports[0], timeout=5.0) as c:
        for i in range(200):
            assert c.cmd("SET", "k%d" % i, "v%d" % i) == "OK"
        for i in range(0, 200, 7):
            c.cmd("DEL", "k%d" % i)
        for i in range(1, 200, 11):
            c.cmd("EXPIRE", "k%d" % i, 3600)
        for i in range(30):
            c.cmd("HSET", "h%d" % i, "a", i, "b", "x%d" % i)
            c.cmd("HINCRBY", "h%d" % i, "a", 5)
        c.cmd("INCRBY", "counter", 41)
        c.cmd("INCR", "counter")
        c.cmd("APPEND", "k2", "-tail")
        c.cmd("RPUSH", "list", "a", "b", "c")
        c.cmd("SADD", "set", "x", "y")
        c.cmd("ZADD", "z", 1, "one", 2, "two")
        # A transaction's writes are shipped one by one (all keys in one slot).
        c.cmd("MULTI")
        c.cmd("SET", "{tx}a", "1")
        c.cmd("SET", "{tx}b", "2")
        assert c.cmd("EXEC") == ["OK", "OK"]
    wait_converged(src, dst)
    assert cmd(dst.ports[0], "GET", "counter", password="dst-pass") == b"42"
    assert cmd(dst.ports[0], "HGET", "h3", "a", password="dst-pass") == b"8"
    assert cmd(dst.ports[0], "PTTL", "k1", password="dst-pass") > 0
    # Status: per partition this node leads, nothing left to ship.
    def caught_up():
        total = 0
        for p in src.ports:
            for part in status_json(p)["links"][0]["partitions"]:
                if part["lag_entries"] != 0 or part["state"] == "resync-needed":
                    return False
                total += 1
        return total == SRC_PARTS

    wait_for(caught_up, 10, "every partition's leader caught up")
    # /metrics has the lag.
    import urllib.request
    text = ""
    for i in range(3):
        text += urllib.request.urlopen("http://127.0.0.1:%d/metrics" % src.http_port(i),
                                       timeout=5).read().decode()
    assert 'halyard_wan_lag_entries{link="dr",partition="' in text
    assert 'halyard_wan_lag_ms{link="dr",partition="' in text


def leader_of_partition(src, p, via=None):
    """The index of the source node leading partition p (from CLUSTER SLOTS on node `via`)."""
    via = 0 if via is None else via
    with RawConn(src.ports[via], timeout=5.0) as c:
        slots = c.cmd("CLUSTER", "SLOTS")
    for entry in slots:
        if entry[0] * SRC_PARTS // SLOTS == p:
            return src.ports.index(entry[2][1])
    return None


def test_kill_source_leader_mid_stream_converges(pair):
    src, dst = pair()
    add_link(src, dst)
    stop = threading.Event()
    done = {"n": 0, "errors": 0}

    def writer(port_choices):
        i = 0
        while not stop.is_set():
            for port in port_choices():
                try:
                    with RawConn(port, timeout=3.0) as c:
                        while not stop.is_set():
                            c.cmd("SET", "w%d" % (i % 500), "v%d" % i)
                            c.cmd("HSET", "wh%d" % (i % 50), "f%d" % (i % 7), i)
                            # Counters: applied twice anywhere, they would differ.
                            c.cmd("INCR", "ctr%d" % (i % 20))
                            if i % 13 == 0:
                                c.cmd("DEL", "w%d" % ((i * 7) % 500))
                            i += 1
                            done["n"] = i
                except (OSError, AssertionError):
                    done["errors"] += 1

    alive = {0, 1, 2}
    t = threading.Thread(target=writer, args=(lambda: [src.ports[j] for j in sorted(alive)],),
                         daemon=True)
    t.start()
    wait_for(lambda: done["n"] > 300, 30, "writes under way")
    victim = leader_of_partition(src, 0)
    assert victim is not None
    if victim == 0:
        pass  # the writer moves on to another node when its connection breaks
    alive.discard(victim)
    src.kill(victim, signal.SIGKILL)
    at_kill = done["n"]
    wait_for(lambda: done["n"] > at_kill + 300, 60, "writes to go on after the kill")
    stop.set()
    t.join(30)
    live = sorted(alive)
    wait_converged(src, dst, deadline_s=60, live=live)
    # Partition 0 has a new leader, which took over from the position its predecessor left.
    found = []

    def led():
        found[:] = [leader_of_partition(src, 0, via=live[0])]
        return found[0] in live

    wait_for(led, 20, "partition 0 led by a survivor")
    new = found[0]
    log = open(src.nodes[new].log_path).read()
    assert "WAN link 'dr', partition 0: shipping from seq" in log
    parts = {part["partition"]: part for part in status_json(src.ports[new])["links"][0]["partitions"]}
    # (It may have shipped nothing itself: the balancer may have handed it the partition after
    # the writes stopped.)
    assert parts[0]["lag_entries"] == 0 and parts[0]["state"] != "resync-needed", parts
    # The killed node comes back; nothing changes.
    src.start(victim)
    wait_converged(src, dst, deadline_s=30, live=live)


def test_link_survives_target_restart(pair):
    src, dst = pair()
    add_link(src, dst)
    with RawConn(src.ports[0], timeout=5.0) as c:
        for i in range(100):
            c.cmd("SET", "a%d" % i, i)
    wait_converged(src, dst)
    # The target restarts from a snapshot (its positions per source are in it, version 8) and
    # the log after it.
    assert text(cmd(dst.ports[0], "HALYARD", "SNAPSHOT", password="dst-pass")).startswith("OK")
    with RawConn(src.ports[0], timeout=5.0) as c:
        for i in range(20):
            c.cmd("INCR", "n")
    wait_converged(src, dst)
    dst.kill(0, signal.SIGKILL)
    # Writes while the target is down queue at the source.
    with RawConn(src.ports[0], timeout=5.0) as c:
        for i in range(100):
            c.cmd("SET", "b%d" % i, i)
            c.cmd("INCR", "n")

    def lagging():
        return any(part["lag_entries"] > 0 or part["failures"] > 0
                   for p in src.ports for part in status_json(p)["links"][0]["partitions"])

    wait_for(lagging, 10, "the source to see the target gone")
    dst.start(0)
    wait_converged(src, dst, deadline_s=60)
    assert cmd(dst.ports[0], "GET", "n", password="dst-pass") == b"120"


def test_outbox_overflow_heals_by_resync(pair):
    """Changes beyond a partition's 16 MiB outbox (the default wan-outbox-max-bytes), while the
    target is down, are dropped: once the target is back, the partition's leader ships what it
    kept, then resyncs the target (its keys' states, then the changes since) instead of
    shipping on past the hole or stopping there, and the target ends with the source's content
    (docs/wan.md "Resync"; tests/integration/test_wan_resync.py has the smaller cases)."""
    src, dst = pair()
    add_link(src, dst)
    dst.kill(0, signal.SIGKILL)
    big = "x" * (1 << 20)
    for i in range(20):  # one partition ({t}): 20 MiB

        def written():
            with RawConn(src.ports[0], timeout=10.0) as c:
                r = c.cmd("SET", "{t}big%d" % i, big)
            assert r == "OK" or is_error(r, "UNKNOWN") or is_error(r, "TRYAGAIN"), r
            return r == "OK"  # a failover of the leadership: the SET is sent again

        wait_for(written, 60, "SET {t}big%d" % i)
    dst.start(0)
    wait_converged(src, dst, deadline_s=90)

    def resynced():
        parts = [part for p in src.ports for part in status_json(p)["links"][0]["partitions"]]
        return any(part["resyncs"] >= 1 for part in parts)

    wait_for(resynced, 30, "the partition of {t} to count its resync")
    import urllib.request

    def metric_says_so():
        text = "".join(urllib.request.urlopen("http://127.0.0.1:%d/metrics" % src.http_port(i),
                                              timeout=5).read().decode() for i in range(3))
        return any(line.startswith("halyard_wan_resyncs_total{") and not line.endswith(" 0")
                   for line in text.splitlines())

    wait_for(metric_says_so, 10, "halyard_wan_resyncs_total above 0 in /metrics")

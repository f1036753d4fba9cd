"""Active-active links between clusters (issue 18, second slice; docs/wan.md "Active-active"):
two clusters linked both ways, both written, the links cut and healed, over real processes on
127.0.0.1.

Each cluster is one node with 2 partitions (a link needs a partitioned cluster): what is tested
is the links and the merge, not each cluster's own replication, and one node starts and stops
fast on the shared machine. Each link goes through a small TCP proxy run by the test, so that
the cut is a network cut in both directions while both clusters stay up and keep taking writes
(stopping one cluster would stop its writes too).
"""

import json
import os
import random
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from cluster import is_error, SECRET
from conftest import RawConn, wait_for
from wan_pairs import peer
from wan_pairs import wan_clusters  # noqa: F401 (a fixture)

PARTS = 2


@pytest.fixture
def two(wan_clusters):
    def make():
        east, west = wan_clusters.two(PARTS)
        return east, west, wan_clusters.proxy(peer(west)), wan_clusters.proxy(peer(east))

    return make


PASS = {"east": "pe", "west": "pw", "north": "pn"}


def cmd(c, *args):
    with RawConn(c.ports[0], timeout=5.0) as r:
        r.cmd("AUTH", PASS[c.extra["cluster-name"]])
        return r.cmd(*args)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def status(c):
    return json.loads(text(cmd(c, "HALYARD", "WAN", "STATUS", "JSON")))


def link(src, proxy, policies=()):
    """Adds the active-active link "dr" from src through proxy, once src's metadata group has a
    leader; policies: (pattern, policy) pairs."""
    args = ["HALYARD", "WAN", "ADD", "dr", "127.0.0.1:%d" % proxy.port, "MODE", "active-active",
            "SECRET", SECRET]
    for pat, pol in policies:
        args += ["POLICY", pat, pol]
    got = []

    def added():
        got[:] = [cmd(src, *args)]
        return not is_error(got[0], "TRYAGAIN")

    wait_for(added, 20, "a metadata leader to take the link")
    assert got[0] == "OK", got


def wait_versions(c):
    """Every partition of c leads the link and keeps versions per key (STORE_OP_WAN_HLC
    applied): from there on each write is shipped as the key's state with its version."""

    def on():
        st = status(c)
        parts = st["links"][0]["partitions"] if st["links"] else []
        return len(parts) == PARTS and all(p["versions"] for p in parts)

    wait_for(on, 20, "%s's partitions to keep versions" % c.extra["cluster-name"], interval=0.1)


def content(c):
    """Every key with its type, value and TTL flag."""
    out = {}
    with RawConn(c.ports[0], timeout=10.0) as r:
        r.cmd("AUTH", PASS[c.extra["cluster-name"]])
        for k in r.cmd("KEYS", "*"):
            t = r.cmd("TYPE", k)
            if t == "string":
                v = r.cmd("GET", k)
            elif t == "hash":
                flat = r.cmd("HGETALL", k)
                v = tuple(sorted(zip(flat[0::2], flat[1::2])))
            elif t == "list":
                v = tuple(r.cmd("LRANGE", k, 0, -1))
            else:
                v = None
            out[text(k)] = (t, v, r.cmd("PTTL", k) > 0)
    return out


def wait_same(east, west, deadline_s=40):
    last = {}

    def same():
        a, b = content(east), content(west)
        last["diff"] = sorted(set(a.items()) ^ set(b.items()), key=repr)[:6]
        last["sizes"] = (len(a), len(b))
        return a == b and all(p["lag_entries"] == 0 for c in (east, west)
                              for p in status(c)["links"][0]["partitions"])

    try:
        wait_for(same, deadline_s, "both clusters to hold the same content", interval=0.25)
    except AssertionError:
        print("sizes:", last.get("sizes"), "first differences:", last.get("diff"))
        for c in (east, west):
            print(json.dumps(status(c)))
            for nd in c.nodes:
                print(nd.log_path, open(nd.log_path).read()[-3000:])
        raise
    return content(east)


def wait_lag0(*cs):
    """Every link of each cluster of cs has shipped and had acknowledged every change (no key
    read meanwhile)."""
    def done():
        return all(p["lag_entries"] == 0 for c in cs for ln in status(c)["links"]
                   for p in ln["partitions"])

    wait_for(done, 40, "every link at lag 0", interval=0.2)


def versions_kept(c):
    return sum(p["versions_kept"] for p in status(c)["links"][0]["partitions"])


def halyctl():
    return os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")


def conflicts(c, count=64):
    return json.loads(text(cmd(c, "HALYARD", "WAN", "CONFLICTS", "dr", str(count), "JSON")))


def conflict_totals(c):
    """{(policy, outcome): count} from WAN STATUS."""
    return {(x["policy"], x["outcome"]): x["count"] for x in status(c)["links"][0]["conflicts"]}


def writer(c, prefix, n, seed, stop_at=None):
    """Writes n changes to c: its own keys, and keys both clusters write (strings, counters,
    hashes, lists, deletions)."""
    rnd = random.Random(seed)
    with RawConn(c.ports[0], timeout=10.0) as r:
        r.cmd("AUTH", PASS[c.extra["cluster-name"]])
        for i in range(n):
            k = rnd.randrange(20)
            op = rnd.randrange(6)
            if op == 0:
                r.cmd("SET", "%s:own:%d" % (prefix, k), "%s-%d" % (prefix, i))
            elif op == 1:
                r.cmd("SET", "both:s:%d" % k, "%s-%d" % (prefix, i))
            elif op == 2:
                r.cmd("INCR", "both:n:%d" % (k % 5))
            elif op == 3:
                r.cmd("HSET", "both:h:%d" % (k % 5), "f%d" % (i % 3), "%s-%d" % (prefix, i))
            elif op == 4:
                r.cmd("RPUSH", "both:l:%d" % (k % 3), "%s-%d" % (prefix, i))
            else:
                r.cmd("DEL", "both:s:%d" % k)


def run_writers(east, west, n, seed):
    ts = [threading.Thread(target=writer, args=(east, "e", n, seed)),
          threading.Thread(target=writer, args=(west, "w", n, seed + 1))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts)


def test_active_active_cut_and_heal_converges(two):
    east, west, to_west, to_east = two()
    link(east, to_west)
    link(west, to_east)
    wait_versions(east)
    wait_versions(west)

    # Linked: both write their own keys and the same keys at once.
    run_writers(east, west, 300, seed=1)
    wait_same(east, west)

    # Cut both ways: both keep writing, and the links fall behind.
    to_west.cut()
    to_east.cut()
    run_writers(east, west, 400, seed=2)

    def behind():
        return all(any(p["lag_entries"] > 0 for p in status(c)["links"][0]["partitions"])
                   for c in (east, west))

    wait_for(behind, 10, "both links to hold changes they could not ship")
    assert content(east) != content(west)

    # Healed: once the writes stop, the same content, key for key.
    to_west.heal()
    to_east.heal()
    final = wait_same(east, west)
    assert any(k.startswith("e:own:") for k in final)
    assert any(k.startswith("w:own:") for k in final)
    assert any(k.startswith("both:") for k in final)

    # The conflicts were decided under LATEST_UPDATE and counted on both sides, and each
    # listed decision follows the rule: the higher (HLC, origin id) wins.
    for c in (east, west):
        totals = conflict_totals(c)
        assert sum(totals.values()) > 0, totals
        assert set(p for p, _ in totals) == {"LATEST_UPDATE"}, totals
        listed = conflicts(c)
        assert listed, "no decision listed"
        for d in listed:
            loc, inc = d["local"], d["incoming"]
            wins = (inc["hlc"], int(inc["origin"], 16)) > (loc["hlc"], int(loc["origin"], 16))
            assert d["outcome"] == ("applied" if wins else "kept"), d
            assert d["policy"] == "LATEST_UPDATE"
            assert d["from"] == ("west" if c is east else "east")

    # /metrics counts them too, once its published copy (it lags the loop) is out.
    for c in (east, west):
        def agrees():
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.http_port(0),
                                          timeout=5).read().decode()
            got = re.findall(r'halyard_wan_conflicts_total\{link="dr",policy="LATEST_UPDATE",'
                             r'outcome="(applied|kept)"\} (\d+)', body)
            return got and sum(int(n) for _, n in got) == sum(conflict_totals(c).values())

        wait_for(agrees, 20, "/metrics to count the conflicts WAN STATUS shows")


def test_policies_by_pattern(two):
    """DISCARD on keep:*, PUT_IF_ABSENT on pia:*, LATEST_UPDATE elsewhere, the same on both
    links: east writes every key first, west later: the decisions follow each rule (DISCARD and
    PUT_IF_ABSENT keep the value written first, east's, on both sides; LATEST_UPDATE takes
    west's), each counted under its policy."""
    east, west, to_west, to_east = two()
    rules = [("keep:*", "DISCARD"), ("pia:*", "PUT_IF_ABSENT")]
    link(west, to_east, rules)
    # East's side through halyctl (once its metadata group has a leader).
    wait_for(lambda: not is_error(cmd(east, "HALYARD", "WAN", "STATUS"), "TRYAGAIN"), 20,
             "east to answer")
    args = [halyctl(), "-p", str(east.ports[0]), "-a", "pe", "wan", "add", "dr", "--to",
            "127.0.0.1:%d" % to_west.port, "--mode", "active-active", "--secret", SECRET]
    for pat, pol in rules:
        args += ["--policy", "%s=%s" % (pat, pol)]
    wait_for(lambda: subprocess.run(args, capture_output=True, text=True,
                                    timeout=10).returncode == 0, 20, "halyctl wan add")
    st = status(east)["links"][0]
    assert st["mode"] == "active-active"
    assert [(p["pattern"], p["policy"]) for p in st["policies"]] == rules
    wait_versions(east)
    wait_versions(west)
    to_west.cut()
    to_east.cut()
    for i in range(10):
        for prefix in ("keep", "pia", "lww"):
            cmd(east, "SET", "%s:%d" % (prefix, i), "east")
    cmd(east, "SET", "pia:only-east", "east")
    # West's writes come later, by the clock both clusters' HLCs are drawn from.
    t0 = time.time()
    wait_for(lambda: time.time() > t0 + 0.005, 1, "the clock to move on", interval=0.001)
    for i in range(10):
        for prefix in ("keep", "pia", "lww"):
            cmd(west, "SET", "%s:%d" % (prefix, i), "west")
    to_west.heal()
    to_east.heal()

    def decided():
        return all(sum(conflict_totals(c).values()) >= 30 for c in (east, west))

    wait_for(decided, 30, "30 decisions on each side", interval=0.2)
    wait_same(east, west)
    for c, taken in ((east, "kept"), (west, "applied")):
        totals = conflict_totals(c)
        assert totals.get(("DISCARD", taken)) == 10, totals
        assert totals.get(("PUT_IF_ABSENT", taken)) == 10, totals
        assert sum(n for (p, _), n in totals.items() if p == "LATEST_UPDATE") == 10, totals
        for i in range(10):
            assert text(cmd(c, "GET", "keep:%d" % i)) == "east"
            assert text(cmd(c, "GET", "pia:%d" % i)) == "east"
            assert text(cmd(c, "GET", "lww:%d" % i)) == "west"
        assert text(cmd(c, "GET", "pia:only-east")) == "east"  # absent on west: put there
    out = subprocess.run([halyctl(), "-p", str(west.ports[0]), "-a", "pw", "wan", "conflicts",
                          "dr", "5"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 5, out
    assert "from east" in out.stdout, out
    # An unknown policy is refused with the list of known ones.
    r = cmd(east, "HALYARD", "WAN", "ADD", "x", "127.0.0.1:1", "MODE", "active-active",
            "POLICY", "*", "MOST_READ")
    assert is_error(r, "ERR unknown policy") and "HIGHER_HITS" in str(r), r


def higher_hits_pair(two):
    """Two clusters linked both ways under POLICY * HIGHER_HITS, keeping versions, both links
    cut: (east, west, to_west, to_east)."""
    east, west, to_west, to_east = two()
    rules = [("*", "HIGHER_HITS")]
    link(east, to_west, rules)
    link(west, to_east, rules)
    wait_versions(east)
    wait_versions(west)
    to_west.cut()
    to_east.cut()
    return east, west, to_west, to_east


def test_higher_hits_converges(two):
    """POLICY * HIGHER_HITS on both links (docs/wan.md "HIGHER_HITS": a key's hits are the
    writes in its version's history). During a cut, each key of hh:* is written several times
    on one side first, then once on the other, later: LATEST_UPDATE would take the later single
    write, HIGHER_HITS takes the side that wrote more, on both sides. Then random concurrent
    writes on both sides during a second cut: both end identical, and every listed decision
    follows the rule (more hits, then the higher HLC, then the origin id)."""
    east, west, to_west, to_east = higher_hits_pair(two)
    assert [p["policy"] for p in status(east)["links"][0]["policies"]] == ["HIGHER_HITS"]
    expect = {}
    for i in range(12):
        many, few = (east, west) if i % 2 == 0 else (west, east)
        for j in range(2 + i % 3):
            cmd(many, "SET", "hh:%d" % i, "many-%d" % j)
        expect["hh:%d" % i] = "many-%d" % (1 + i % 3)
    for i in range(12):
        few = west if i % 2 == 0 else east
        cmd(few, "SET", "hh:%d" % i, "few")  # later than every write of the other side
    to_west.heal()
    to_east.heal()
    # Reads count under HIGHER_HITS: the keys are read only once both links are at lag 0
    # (wait_same reads them all), or the polls' reads would decide.
    wait_lag0(east, west)
    wait_same(east, west)
    for c in (east, west):
        for k, v in expect.items():
            assert text(cmd(c, "GET", k)) == v, (k, c.extra["cluster-name"])
        totals = conflict_totals(c)
        assert set(p for p, _ in totals) == {"HIGHER_HITS"}, totals
        assert totals.get(("HIGHER_HITS", "kept"), 0) >= 6, totals

    # Random writes on both sides (strings, counters, hashes, lists, deletions) during a cut.
    to_west.cut()
    to_east.cut()
    run_writers(east, west, 300, seed=7)
    to_west.heal()
    to_east.heal()
    final = wait_same(east, west)
    assert any(k.startswith("both:") for k in final)
    for c in (east, west):
        listed = conflicts(c)
        assert listed, "no decision listed"
        for d in listed:
            loc, inc = d["local"], d["incoming"]
            assert d["policy"] == "HIGHER_HITS", d

            def rank(v):
                return (v["hits"], v["hlc"], int(v["origin"], 16))

            assert d["outcome"] == ("applied" if rank(inc) > rank(loc) else "kept"), d


def test_higher_hits_counts_reads(two):
    """HIGHER_HITS counts reads too (docs/wan.md "HIGHER_HITS"): during a cut east writes r:1
    once and reads it 6 times, west writes it twice, later; east's leader proposes the reads
    (a new version of r:1 with 7 hits, shipped like a write: east's outbox grows),
    and after the heal both sides keep east's value (7 hits against 2; counting writes only,
    west's would win). Nothing reads r:1 on west before both links are at lag 0, so the test's
    own reads do not count there."""
    east, west, to_west, to_east = higher_hits_pair(two)

    def queued(c):
        return sum(p["lag_entries"] for p in status(c)["links"][0]["partitions"])

    assert cmd(east, "SET", "r:1", "e") == "OK"
    wait_for(lambda: queued(east) >= 1, 20, "east's write queued for the cut link")
    before = queued(east)
    for _ in range(6):
        assert text(cmd(east, "GET", "r:1")) == "e"
    wait_for(lambda: queued(east) > before, 20, "east's reads proposed as a new version",
             interval=0.2)
    assert cmd(west, "SET", "r:1", "w1") == "OK"
    assert cmd(west, "SET", "r:1", "w2") == "OK"
    to_west.heal()
    to_east.heal()
    wait_lag0(east, west)
    for c in (east, west):
        assert text(cmd(c, "GET", "r:1")) == "e", c.extra["cluster-name"]
    decided = [d for d in conflicts(west) if d["key"] == "r:1"]
    # East's version with its reads (1 + 6 hits, or 1 + some of them when the reads were
    # proposed in two rounds) against west's 2 writes: applied on west.
    assert any(d["incoming"]["hits"] > 2 and d["local"]["hits"] == 2 and
               d["outcome"] == "applied" for d in decided), decided


POLICY_OF = {"dis": "DISCARD", "pia": "PUT_IF_ABSENT", "pas": "PASS_THROUGH",
             "exp": "EXPIRATION_TIME", "hh": "HIGHER_HITS", "lww": "LATEST_UPDATE"}


def rank(v, policy):
    """A version's place in its policy's order (docs/wan.md "Why every policy converges"): the
    incoming version is taken when it ranks higher."""
    origin = int(v["origin"], 16)
    live = v["state"] == "value"
    if policy == "LATEST_UPDATE":
        return (v["hlc"], origin)
    if policy == "DISCARD":
        return (v["hits"], -v["hlc"], origin)
    if policy == "PUT_IF_ABSENT":
        return (v["hits"], live, -v["hlc"], origin)
    if policy == "EXPIRATION_TIME":
        lasts = 0 if not live else float("inf") if v["expire_at_ms"] < 0 else v["expire_at_ms"] + 1
        return (v["hits"], lasts, v["hlc"], origin)
    return (v["hits"], v["hlc"], origin)  # HIGHER_HITS, PASS_THROUGH


def policy_writer(c, n, seed):
    """n random writes of keys both clusters write, under every policy's prefix: SETs with and
    without a TTL, APPENDs, INCRs, HSETs and DELs."""
    rnd = random.Random(seed)
    name = c.extra["cluster-name"]
    with RawConn(c.ports[0], timeout=10.0) as r:
        r.cmd("AUTH", PASS[name])
        for i in range(n):
            k = "%s:%d" % (rnd.choice(sorted(POLICY_OF)), rnd.randrange(6))
            op = rnd.randrange(6)
            if op == 0:
                r.cmd("SET", k, "%s-%d" % (name, i))
            elif op == 1:
                r.cmd("SET", k, "%s-%d" % (name, i), "EX", str(3600 * (1 + rnd.randrange(3))))
            elif op == 2:
                r.cmd("APPEND", k, name[0])
            elif op == 3:
                r.cmd("INCR", k + ":n")
            elif op == 4:
                r.cmd("HSET", k + ":h", "f%d" % rnd.randrange(3), "%s-%d" % (name, i))
            else:
                r.cmd("DEL", k)


def test_every_policy_converges_after_a_cut(two):
    """Every merge policy converges (docs/wan.md "Why every policy converges"): one prefix of
    keys per policy, the same rules on both links; concurrent random writes on both sides while
    linked, then during a cut both ways: after the heal both hold the same content, key for
    key, and every listed decision follows its policy's order. It fails with DISCARD keeping
    the local version, PUT_IF_ABSENT any live one or PASS_THROUGH taking the incoming one."""
    east, west, to_west, to_east = two()
    rules = [("%s:*" % p, pol) for p, pol in sorted(POLICY_OF.items()) if pol != "LATEST_UPDATE"]
    link(east, to_west, rules)
    link(west, to_east, rules)
    wait_versions(east)
    wait_versions(west)

    def both_write(n, seed):
        ts = [threading.Thread(target=policy_writer, args=(east, n, seed)),
              threading.Thread(target=policy_writer, args=(west, n, seed + 1))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in ts)

    both_write(300, 11)
    wait_same(east, west)
    to_west.cut()
    to_east.cut()
    both_write(400, 12)
    assert content(east) != content(west)
    to_west.heal()
    to_east.heal()
    final = wait_same(east, west)
    for p in POLICY_OF:
        assert any(k.startswith(p + ":") for k in final), p
    seen = set()
    for c in (east, west):
        for d in conflicts(c):
            pol = POLICY_OF[d["key"].split(":")[0]]
            assert d["policy"] == pol, d
            seen.add(pol)
            wins = rank(d["incoming"], pol) > rank(d["local"], pol)
            assert d["outcome"] == ("applied" if wins else "kept"), d
    assert len(seen) >= 3, seen  # the last 64 listed span several policies


def test_restart_keeps_versions(two):
    """West takes a snapshot (its versions in it, version 9), writes on, and is killed -9 while
    east writes: restarted from the snapshot and its log, it still knows every key's version,
    so the merge after the restart converges as before."""
    import signal
    east, west, to_west, to_east = two()
    link(east, to_west)
    link(west, to_east)
    wait_versions(east)
    wait_versions(west)
    run_writers(east, west, 200, seed=5)
    wait_same(east, west)
    assert text(cmd(west, "HALYARD", "SNAPSHOT")).startswith("OK")
    run_writers(east, west, 100, seed=6)
    # Changes west has just applied and east cannot have acknowledged yet (a link's position
    # is committed through the metadata group, lazily), then a snapshot past them and a kill:
    # the outbox in the snapshot still holds them, and the restarted west ships them. (Before
    # the outbox went into snapshots, west came back with a gap: resync-needed for good.)
    for i in range(20):
        assert cmd(west, "SET", "late:%d" % i, "w") == "OK"
    assert text(cmd(west, "HALYARD", "SNAPSHOT")).startswith("OK")
    kept = versions_kept(west)
    assert kept >= len(content(west)), kept
    west.kill(0, signal.SIGKILL)
    writer(east, "e", 200, 7)
    west.start(0)
    wait_versions(west)
    # Every version is back (from the snapshot and the log after it), not a fresh table that
    # STORE_OP_WAN_HLC would start: at least as many as before the kill.
    assert versions_kept(west) >= kept
    run_writers(east, west, 200, seed=8)
    same = wait_same(east, west)
    assert all(same.get("late:%d" % i) == ("string", b"w", False) for i in range(20)), same
    assert not any(p["state"] == "resync-needed" for p in status(west)["links"][0]["partitions"])
    totals = conflict_totals(west)
    assert sum(totals.values()) > 0, totals


def test_passive_target_refuses_client_writes(two):
    """wan-passive yes on an active-passive link's target: its clients' writes (plain, in a
    transaction, in a script) get -READONLY, reads go on, and the link's changes still
    apply; set back to no, the target takes writes again."""
    east, west, to_west, _ = two()
    wait_for(lambda: not is_error(cmd(east, "HALYARD", "WAN", "STATUS"), "TRYAGAIN"), 20,
             "east to answer")
    got = []

    def added():
        got[:] = [cmd(east, "HALYARD", "WAN", "ADD", "dr", "127.0.0.1:%d" % to_west.port,
                      "SECRET", SECRET)]
        return not is_error(got[0], "TRYAGAIN")

    wait_for(added, 20, "east to take the link")
    assert got[0] == "OK", got
    assert cmd(west, "CONFIG", "SET", "wan-passive", "yes") == "OK"
    assert [text(v) for v in cmd(west, "CONFIG", "GET", "wan-passive")] == ["wan-passive", "yes"]
    r = cmd(west, "SET", "k", "local")
    assert is_error(r, "READONLY this cluster is a passive WAN target"), r
    with RawConn(west.ports[0], timeout=5.0) as c:
        c.cmd("AUTH", "pw")
        assert c.cmd("MULTI") == "OK"
        c.cmd("SET", "k", "in-multi")
        r = c.cmd("EXEC")
        assert is_error(r, "READONLY") or is_error(r, "EXECABORT"), r
    r = cmd(west, "EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "k")
    assert is_error(r, "READONLY"), r
    assert cmd(east, "SET", "k", "from-east") == "OK"
    wait_for(lambda: text(cmd(west, "GET", "k")) == "from-east", 20, "east's write on west")
    assert cmd(west, "CONFIG", "SET", "wan-passive", "no") == "OK"
    assert cmd(west, "SET", "k2", "local") == "OK"


def test_keys_written_before_the_links_are_copied_both_ways(two):
    """Both clusters hold keys before the active-active links are added (their own, and some of
    the same names with different values): each side's partitions resync the other
    (docs/wan.md "Resync"), nothing is deleted, a key both wrote before is decided alike on
    both sides, and both end with the same content. On a build without the resync neither gets
    the other's earlier keys."""
    east, west, to_west, to_east = two()
    for c, name in ((east, "east"), (west, "west")):
        with RawConn(c.ports[0], timeout=10.0) as r:
            r.cmd("AUTH", PASS[name])
            for i in range(300):
                assert r.cmd("SET", "%s:%d" % (name, i), i) == "OK"
                if i % 3 == 0:
                    assert r.cmd("HSET", "h%s:%d" % (name, i), "f", name) == 1
            for i in range(50):
                assert r.cmd("SET", "both:%d" % i, name) == "OK"
    link(east, to_west)
    link(west, to_east)
    wait_versions(east)
    wait_versions(west)
    got = wait_same(east, west, deadline_s=60)
    assert len(got) == 2 * 300 + 2 * 100 + 50, len(got)
    # Every partition resynced once on each side.
    for c in (east, west):
        assert all(p["resyncs"] == 1 for p in status(c)["links"][0]["partitions"])
    # The stream goes on as usual after it.
    assert cmd(east, "SET", "both:0", "after") == "OK"
    wait_for(lambda: cmd(west, "GET", "both:0") == b"after", 20, "a write after the resync")


def test_three_clusters_full_mesh_converge(wan_clusters):
    """Three clusters, each linked active-active to both others (a full mesh: each ships only
    its own clients' writes, so each needs a link to every other), all three writing the same
    keys; the third cut off from both others (both directions) while all keep writing, then
    healed: once writes stop, all three hold the same content, key for key, every link at lag
    0, and conflicts were decided on every cluster (it fails with a ring of links instead of a
    mesh: the writes of one cluster never reach the cluster two hops away)."""
    names = ("east", "west", "north")
    cs = {nm: wan_clusters.cluster(1, {"partitions": PARTS, "cluster-name": nm,
                                       "requirepass": PASS[nm]}) for nm in names}
    proxies = {}
    for src in names:
        for dst in names:
            if src == dst:
                continue
            p = wan_clusters.proxy(peer(cs[dst]))
            proxies[(src, dst)] = p
            # Both links of a pair have the same name: conflicts are counted under the
            # sender's name for the link, and WAN STATUS shows them under the receiver's.
            pair = "-".join(sorted((src, dst)))
            args = ["HALYARD", "WAN", "ADD", pair, "127.0.0.1:%d" % p.port, "MODE",
                    "active-active", "SECRET", SECRET]
            wait_for(lambda: not is_error(cmd(cs[src], *args), "TRYAGAIN"), 20,
                     "%s's metadata leader to take the link to %s" % (src, dst))
    for c in cs.values():
        wait_versions(c)

    def run(n, seed):
        ts = [threading.Thread(target=writer, args=(cs[nm], nm[0], n, seed + i))
              for i, nm in enumerate(names)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in ts)

    last = {}

    def all_same():
        got = [content(cs[nm]) for nm in names]
        last["sizes"] = [len(g) for g in got]
        last["diff"] = sorted(set(got[0].items()) ^ set(got[2].items()), key=repr)[:6]
        lag0 = all(p["lag_entries"] == 0 for c in cs.values() for ln in status(c)["links"]
                   for p in ln["partitions"])
        return got[0] == got[1] == got[2] and lag0

    def converge():
        try:
            wait_for(all_same, 60, "the three clusters to hold the same content",
                     interval=0.25)
        except AssertionError:
            print("sizes:", last.get("sizes"), "first differences:", last.get("diff"))
            raise

    run(200, seed=11)
    converge()
    for (src, dst), p in proxies.items():
        if "north" in (src, dst):
            p.cut()
    run(300, seed=21)
    assert content(cs["north"]) != content(cs["east"])
    for p in proxies.values():
        p.heal()
    converge()
    final = content(cs["east"])
    assert any(k.startswith("n:own") for k in final) and any(k.startswith("w:own") for k in final)
    for nm in names:
        decided = sum(x["count"] for ln in status(cs[nm])["links"] for x in ln["conflicts"])
        assert decided > 0, (nm, status(cs[nm]))


def led_by(c, p, alive):
    """The index of c's member leading partition p, from CLUSTER SLOTS on a live member."""
    with RawConn(c.ports[min(alive)], timeout=5.0) as r:
        r.cmd("AUTH", PASS[c.extra["cluster-name"]])
        slots = r.cmd("CLUSTER", "SLOTS")
    for entry in slots:
        if entry[0] * PARTS // 16384 == p and entry[2][1] in c.ports:
            return c.ports.index(entry[2][1])
    return None


def test_three_node_clusters_leaders_killed_on_both_sides(wan_clusters):
    """Two clusters of 3 nodes linked active-active both ways, both writing (keys of their own,
    acknowledged, and keys both write); kill -9 of partition 0's leader on one side and of
    partition 1's leader on the other while the changes and merges flow, then both back: once
    writes stop, both hold the same content, every acknowledged key of each side is on both
    with its value (nothing committed lost), each side's own lists equal on both (an append
    applied twice would show), and every link of every member is at lag 0."""
    cs = {}
    for nm, other in (("east", "west"), ("west", "east")):
        cs[nm] = wan_clusters.cluster(3, {"partitions": PARTS, "cluster-name": nm,
                                          "requirepass": PASS[nm]})
    for nm, other in (("east", "west"), ("west", "east")):
        to = ",".join("127.0.0.1:%d" % (p + 10000) for p in cs[other].ports)
        args = ["HALYARD", "WAN", "ADD", "dr", to, "MODE", "active-active", "SECRET",
                SECRET]
        wait_for(lambda: not is_error(cmd(cs[nm], *args), "TRYAGAIN"), 30,
                 "%s's metadata leader to take the link" % nm)
    alive = {nm: {0, 1, 2} for nm in cs}

    def led_parts(c, nm):
        return [p for i in sorted(alive[nm]) for p in json.loads(text(
            cmd_on(c, i, "HALYARD", "WAN", "STATUS", "JSON")))["links"][0]["partitions"]]

    for nm, c in cs.items():
        wait_for(lambda: len(led_parts(c, nm)) == PARTS and
                 all(p["versions"] for p in led_parts(c, nm)), 30,
                 "%s's partitions to keep versions" % nm, interval=0.2)

    stop = threading.Event()
    acked = {nm: {} for nm in cs}

    def writer(nm):
        c, i, rnd = cs[nm], 0, random.Random(nm)
        while not stop.is_set():
            try:
                with RawConn(c.ports[rnd.choice(sorted(alive[nm]))], timeout=3.0) as r:
                    r.cmd("AUTH", PASS[nm])
                    while not stop.is_set():
                        k, v = "%s:own:%d" % (nm, i), "v%d" % i
                        if r.cmd("SET", k, v) == "OK":
                            acked[nm][k] = v
                        r.cmd("SET", "both:%d" % (i % 40), "%s-%d" % (nm, i))
                        r.cmd("RPUSH", "%s:list" % nm, i)
                        i += 1
            except (OSError, AssertionError):
                pass  # the member went away: another one, the same write again

    ts = [threading.Thread(target=writer, args=(nm,), daemon=True) for nm in cs]
    for t in ts:
        t.start()
    wait_for(lambda: all(len(a) > 200 for a in acked.values()), 60, "writes under way")
    victims = {}
    for nm, p in (("east", 0), ("west", 1)):
        victims[nm] = led_by(cs[nm], p, alive[nm])
        assert victims[nm] is not None
        alive[nm].discard(victims[nm])
        cs[nm].kill(victims[nm])
    at = {nm: len(a) for nm, a in acked.items()}
    wait_for(lambda: all(len(acked[nm]) > at[nm] + 200 for nm in cs), 60,
             "writes to go on after the kills")
    for nm, i in victims.items():
        cs[nm].start(i)
        alive[nm].add(i)
    stop.set()
    for t in ts:
        t.join(30)

    last = {}

    def same():
        a, b = content(cs["east"]), content(cs["west"])
        last["diff"] = sorted(set(a.items()) ^ set(b.items()), key=repr)[:6]
        lag0 = all(p["lag_entries"] == 0 for nm, c in cs.items() for p in led_parts(c, nm))
        return a == b and lag0 and all(len(led_parts(c, nm)) == PARTS for nm, c in cs.items())

    try:
        wait_for(same, 90, "both clusters to hold the same content", interval=0.5)
    except AssertionError:
        print("first differences:", last.get("diff"))
        raise
    final = content(cs["east"])
    for nm in cs:
        for k, v in acked[nm].items():
            got = final.get(k)
            assert got is not None and got[0] == "string" and text(got[1]) == v, (k, v, got)
        assert final["%s:list" % nm][0] == "list" and len(final["%s:list" % nm][1]) > 400


def cmd_on(c, i, *args):
    with RawConn(c.ports[i], timeout=5.0) as r:
        r.cmd("AUTH", PASS[c.extra["cluster-name"]])
        return r.cmd(*args)

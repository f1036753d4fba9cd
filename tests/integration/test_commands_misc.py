"""DUMP/RESTORE, keyspace notifications, sharded pub/sub, COMMAND introspection and GEO, as
Redis 7.0 answers them: on one node with redis-py and redis-cli, and on a partitioned 3-node
cluster through a follower (proxy and moved modes), where every replica must end with the
same values."""

import subprocess
import time

import pytest
import redis

from cluster import Cluster
from conftest import RawConn, wait_for

CHECKSUM = "DUMP payload version or checksum are wrong"


def _fill_every_type(c):
    c.set("str", "hello")
    c.set("int", "12345")
    c.hset("h", mapping={"f1": "v1", "f2": "v2"})
    c.rpush("l", "a", "b", "a")
    c.sadd("s", "x", "y", "1")
    c.zadd("z", {"m1": 1.5, "m2": -2})
    c.pfadd("hll", "a", "b", "c")


def test_dump_restore_every_type(rb):
    """DUMP then RESTORE recreates strings, hashes, lists, sets, sorted sets and HLLs with the
    same value (and the same payload when dumped again); DUMP of a missing key is nil."""
    _fill_every_type(rb)
    for k in ("str", "int", "h", "l", "s", "z", "hll"):
        d = rb.dump(k)
        assert rb.restore(k + "2", 0, d) == b"OK"
        assert rb.dump(k + "2") == d
        assert rb.type(k + "2") == rb.type(k)
        assert rb.ttl(k + "2") == -1
    assert rb.get("str2") == b"hello"
    assert rb.hgetall("h2") == {b"f1": b"v1", b"f2": b"v2"}
    assert rb.lrange("l2", 0, -1) == [b"a", b"b", b"a"]
    assert rb.smembers("s2") == {b"x", b"y", b"1"}
    assert rb.zrange("z2", 0, -1, withscores=True) == [(b"m2", -2.0), (b"m1", 1.5)]
    assert rb.pfcount("hll2") == 3
    assert rb.object("encoding", "int2") == b"int"
    assert rb.dump("missing") is None


def test_restore_options_and_errors(rb):
    """REPLACE, ABSTTL, IDLETIME and FREQ as Redis 7.0 takes them, with its error texts:
    BUSYKEY, bad TTL, bad IDLETIME/FREQ, syntax error, corrupt and truncated payloads."""
    rb.set("a", "1")
    d = rb.dump("a")
    with pytest.raises(redis.ResponseError, match="BUSYKEY Target key name already exists."):
        rb.restore("a", 0, d)
    rb.rpush("a2", "x")
    assert rb.restore("a2", 0, d, replace=True) == b"OK"
    assert rb.get("a2") == b"1"
    assert rb.restore("t", 5000, d) == b"OK"
    assert 4000 < rb.pttl("t") <= 5000
    now_ms = int(time.time() * 1000)  # the server runs on this machine's clock
    assert rb.restore("abs", now_ms + 100000, d, absttl=True) == b"OK"
    # The server reads the clock once per loop turn (and this test truncated its own reading):
    # its "now" may be a few milliseconds behind ours (CI saw PTTL 100001).
    assert 90000 < rb.pttl("abs") <= 100000 + 1000
    assert rb.restore("past", 1000, d, absttl=True) == b"OK"
    assert rb.exists("past") == 0
    assert rb.restore("idle", 0, d, idletime=1000) == b"OK"
    assert rb.object("idletime", "idle") >= 999
    assert rb.execute_command("RESTORE", "freq", 0, d, "FREQ", 100) == b"OK"
    errors = [
        (("RESTORE", "x", -1, d), "Invalid TTL value, must be >= 0"),
        (("RESTORE", "x", "abc", d), "value is not an integer or out of range"),
        (("RESTORE", "x", 0, d, "IDLETIME", -1), "Invalid IDLETIME value, must be >= 0"),
        (("RESTORE", "x", 0, d, "FREQ", 256), "Invalid FREQ value, must be >= 0 and <= 255"),
        (("RESTORE", "x", 0, d, "IDLETIME", 1, "FREQ", 1), "syntax error"),
        (("RESTORE", "x", 0, d, "BOGUS"), "syntax error"),
        (("RESTORE", "x", 0, b"garbage"), CHECKSUM),
        (("RESTORE", "x", 0, b""), CHECKSUM),
        (("RESTORE", "x", 0, d[:-1]), CHECKSUM),
        (("RESTORE", "x", 0, d[:1] + b"\xff" + d[2:]), CHECKSUM),
    ]
    for args, msg in errors:
        with pytest.raises(redis.ResponseError, match=msg):
            rb.execute_command(*args)
    assert rb.exists("x") == 0


def test_restore_through_redis_cli(srv, tmp_path):
    """redis-cli -x sends a payload read from a file as RESTORE's last argument."""
    rb = srv.client(decode_responses=False)
    rb.zadd("z", {"a": 1, "b": 2})
    payload = tmp_path / "payload"
    payload.write_bytes(rb.dump("z"))
    with open(payload, "rb") as f:
        out = subprocess.run(["redis-cli", "-p", str(srv.port), "-x", "RESTORE", "z2", "0"],
                             stdin=f, stdout=subprocess.PIPE, timeout=30, text=True).stdout
    assert out.strip() == "OK"
    assert rb.zrange("z2", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0)]
    rb.close()


def test_object_subcommands(srv, rb):
    """OBJECT ENCODING for each type, REFCOUNT, IDLETIME, FREQ's error without an LFU policy,
    HELP, and nil for a missing key."""
    _fill_every_type(rb)
    want = {"str": b"embstr", "int": b"int", "h": b"listpack", "l": b"quicklist",
            "s": b"hashtable", "z": b"listpack", "hll": b"raw"}
    for k, enc in want.items():
        assert rb.object("encoding", k) == enc, k
        assert rb.object("refcount", k) == 1
        assert rb.object("idletime", k) >= 0
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is not selected"):
        rb.object("freq", "str")
    assert rb.object("encoding", "missing") is None
    with srv.raw() as c:
        help_lines = c.cmd("OBJECT", "HELP")
    assert any("ENCODING" in h for h in help_lines)


# ---- a partitioned cluster ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3, {"partitions": 2})
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, "\n".join(errors)


def leader_port_of(port, key):
    """The client port of the node leading key's partition, as CLUSTER SLOTS on port tells."""
    with RawConn(port) as c:
        slot = c.cmd("CLUSTER", "KEYSLOT", key)
        for lo, hi, master, *_ in c.cmd("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return master[1]
    return None


def follower_of(cluster, key):
    wait_for(lambda: leader_port_of(cluster.ports[0], key) in cluster.ports, 30,
             "a leader for the key's partition")
    lead = leader_port_of(cluster.ports[0], key)
    return lead, next(p for p in cluster.ports if p != lead)


def replica_dump(port, key):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return c.cmd("DUMP", key)


def test_restore_through_a_follower_reaches_every_replica(cluster):
    """RESTORE sent to a follower (proxy mode) is applied on every replica, which then DUMP
    the same payload; in moved mode the follower answers -MOVED with the leader's address; a
    corrupt payload is refused on the follower, nothing proposed."""
    key = "{dr}k"
    lead, fol = follower_of(cluster, key)
    with RawConn(lead) as c:
        c.cmd("DEL", key, "{dr}src")
        assert c.cmd("ZADD", "{dr}src", 1, "a", 2, "b") == 2
        d = c.cmd("DUMP", "{dr}src")
    with RawConn(fol) as f:
        assert f.cmd("RESTORE", key, 0, d) == "OK"
        assert f.cmd("RESTORE", key, 0, d) == "BUSYKEY Target key name already exists."
        assert f.cmd("RESTORE", "{dr}bad", 0, d[:-2]) == "ERR " + CHECKSUM
        assert f.cmd("ZRANGE", key, 0, -1, "WITHSCORES") == [b"a", b"1", b"b", b"2"]
    for p in cluster.ports:
        wait_for(lambda: replica_dump(p, key) == d, 10, "replica %d to apply RESTORE" % p)
    with RawConn(fol) as f:
        assert f.cmd("CONFIG", "SET", "redirect", "moved") == "OK"
        try:
            reply = f.cmd("RESTORE", key, 0, d, "REPLACE")
            slot = f.cmd("CLUSTER", "KEYSLOT", key)
            assert reply == "MOVED %d 127.0.0.1:%d" % (slot, lead)
        finally:
            assert f.cmd("CONFIG", "SET", "redirect", "proxy") == "OK"
    with RawConn(lead) as c:
        assert c.cmd("RESTORE", key, 0, d, "REPLACE") == "OK"


# ---- keyspace notifications --------------------------------------------------------------------

def test_keyspace_notifications_single_node(srv, r):
    """notify-keyspace-events as Redis 7.0: CONFIG GET answers the canonical form, a bad letter
    is refused, and a pattern subscriber receives __keyspace@0__ and __keyevent@0__ messages
    for the classes set, "expired" when a key's TTL passes, and nothing once it is emptied."""
    try:
        assert r.config_set("notify-keyspace-events", "KA") is True
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AK"}
        with pytest.raises(redis.ResponseError, match="Invalid event class character"):
            r.config_set("notify-keyspace-events", "KQ")
        assert r.config_set("notify-keyspace-events", "KEl$x") is True
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "$lxKE"}
        p = r.pubsub()
        p.psubscribe("__key*")
        assert p.get_message(timeout=5)["type"] == "psubscribe"
        r.set("a", "1")
        r.hset("h", "f", "v")  # class h is off: nothing
        r.rpush("l", "x")
        r.psetex("t", 50, "v")
        want = [("__keyspace@0__:a", "set"), ("__keyevent@0__:set", "a"),
                ("__keyspace@0__:l", "rpush"), ("__keyevent@0__:rpush", "l"),
                ("__keyspace@0__:t", "set"), ("__keyevent@0__:set", "t"),
                ("__keyspace@0__:t", "expired"), ("__keyevent@0__:expired", "t")]
        got = []
        wait_for(lambda: _collect(p, got, len(want)), 10, "the notifications")
        assert got == want
        assert r.config_set("notify-keyspace-events", "") is True
        r.set("b", "1")
        assert p.get_message(timeout=0.3) is None
        p.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_keyspace_notifications_streams(srv, r):
    """Class t as Redis 7.0 announces it: xadd (then xtrim when its MAXLEN removed entries),
    xtrim and xdel when they removed some, xsetid, the xgroup-* events, and
    xgroup-createconsumer when XREADGROUP or XCLAIM created the consumer (not when it
    existed); nothing for an XDEL of a missing ID or an XGROUP DELCONSUMER of a missing one."""
    try:
        assert r.config_set("notify-keyspace-events", "Kt") is True
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "tK"}
        p = r.pubsub()
        p.psubscribe("__key*")
        assert p.get_message(timeout=5)["type"] == "psubscribe"
        r.xgroup_create("s", "g", "$", mkstream=True)
        assert r.xgroup_createconsumer("s", "g", "Bob") == 1
        assert r.xgroup_createconsumer("s", "g", "Bob") == 0
        sid = r.xadd("s", {"f": "1"}, id="1-0")
        r.xreadgroup("g", "Alice", {"s": ">"})
        r.xclaim("s", "g", "Mike", 0, [sid], force=True)
        assert r.xgroup_delconsumer("s", "g", "Lee") == 0
        r.xautoclaim("s", "g", "Bob", 0, sid)
        r.xgroup_delconsumer("s", "g", "Bob")
        r.xadd("s", {"f": "2"}, id="2-0")
        r.xadd("s", {"f": "3"}, id="3-0", maxlen=2, approximate=False)
        assert r.xdel("s", "9-0") == 0
        assert r.xdel("s", "2-0") == 1
        assert r.xtrim("s", maxlen=0, approximate=False) == 1
        assert r.execute_command("XSETID", "s", "5-0") == "OK"
        assert r.xgroup_setid("s", "g", "0") is True
        assert r.xgroup_destroy("s", "g") == 1
        assert r.xgroup_destroy("s", "g") == 0
        events = ["xgroup-create", "xgroup-createconsumer", "xadd", "xgroup-createconsumer",
                  "xgroup-createconsumer", "xgroup-delconsumer", "xadd", "xadd", "xtrim",
                  "xdel", "xtrim", "xsetid", "xgroup-setid", "xgroup-destroy"]
        want = [("__keyspace@0__:s", ev) for ev in events]
        got = []
        wait_for(lambda: _collect(p, got, len(want)), 20, "the stream notifications")
        assert got == want
        p.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def _collect(p, got, n):
    m = p.get_message(timeout=0.2)
    if m is not None and m["type"] == "pmessage":
        got.append((m["channel"], m["data"]))
    return len(got) >= n


def test_keyspace_notifications_on_every_replica(cluster):
    """A write made through one node is announced to the subscribers of every node: each
    replica of the key's partition applies the entry and publishes to its own subscribers."""
    key = "{kn}k"
    subs = []
    try:
        for port in cluster.ports:
            c = redis.Redis(port=port, decode_responses=True)
            assert c.config_set("notify-keyspace-events", "E$") is True
            p = c.pubsub()
            p.subscribe("__keyevent@0__:set")
            assert p.get_message(timeout=5)["type"] == "subscribe"
            subs.append((c, p))
        lead, fol = follower_of(cluster, key)
        w = redis.Redis(port=fol, decode_responses=True)
        w.set(key, "v")
        for c, p in subs:
            got = []
            wait_for(lambda: _collect_msg(p, got), 10, "the notification on every node")
            assert got == [("__keyevent@0__:set", key)]
        w.close()
    finally:
        for c, p in subs:
            p.close()
            c.config_set("notify-keyspace-events", "")
            c.close()


def _collect_msg(p, got):
    m = p.get_message(timeout=0.2)
    if m is not None and m["type"] == "message":
        got.append((m["channel"], m["data"]))
    return len(got) >= 1


# ---- sharded pub/sub ---------------------------------------------------------------------------

def test_sharded_pubsub_single_node(srv):
    """SSUBSCRIBE/SUNSUBSCRIBE/SPUBLISH and PUBSUB SHARDCHANNELS/SHARDNUMSUB as Redis 7.0:
    notices count shard channels only, channels of two slots are -CROSSSLOT, smessage pushes,
    the RESP2 subscriber context, and plain subscribers do not see shard messages."""
    with srv.raw() as sub, srv.raw() as pub, srv.raw() as plain:
        assert sub.cmd("SSUBSCRIBE", "{a}x", "{a}y") == [b"ssubscribe", b"{a}x", 1]
        assert sub.read() == [b"ssubscribe", b"{a}y", 2]
        assert plain.cmd("SUBSCRIBE", "{a}x") == [b"subscribe", b"{a}x", 1]
        assert pub.cmd("SSUBSCRIBE", "a", "b") == \
            "CROSSSLOT Keys in request don't hash to the same slot"
        assert pub.cmd("PUBSUB", "SHARDCHANNELS") in ([b"{a}x", b"{a}y"], [b"{a}y", b"{a}x"])
        assert pub.cmd("PUBSUB", "SHARDCHANNELS", "*x") == [b"{a}x"]
        assert pub.cmd("PUBSUB", "SHARDNUMSUB", "{a}x", "nope") == [b"{a}x", 1, b"nope", 0]
        assert pub.cmd("PUBSUB", "NUMSUB", "{a}x") == [b"{a}x", 1]
        assert pub.cmd("SPUBLISH", "{a}x", "hi") == 1
        assert sub.read() == [b"smessage", b"{a}x", b"hi"]
        assert pub.cmd("PUBLISH", "{a}x", "plain") == 1
        assert plain.read() == [b"message", b"{a}x", b"plain"]
        assert sub.cmd("GET", "k").startswith("ERR Can't execute 'get'")
        assert sub.cmd("SUNSUBSCRIBE", "{a}x") == [b"sunsubscribe", b"{a}x", 1]
        assert sub.cmd("SUNSUBSCRIBE") == [b"sunsubscribe", b"{a}y", 0]
        assert sub.cmd("SUNSUBSCRIBE") == [b"sunsubscribe", None, 0]
        assert pub.cmd("SPUBLISH", "{a}x", "gone") == 0
        assert sub.cmd("PING") == "PONG"  # no subscription left: the plain reply


def test_sharded_pubsub_reaches_every_node(cluster):
    """SPUBLISH on one node reaches the shard subscribers of every node (each holds a replica
    of the channel's partition), and only them; it counts this node's receivers."""
    conns = [RawConn(p) for p in cluster.ports]
    try:
        for c in conns:
            assert c.cmd("SSUBSCRIBE", "{sh}news") == [b"ssubscribe", b"{sh}news", 1]

        def probe():
            with RawConn(cluster.ports[0]) as pub:
                pub.cmd("SPUBLISH", "{sh}news", "probe")
            ok = True
            for c in conns:
                try:
                    c.sock.settimeout(0.3)
                    m = c.read()
                    ok = ok and m == [b"smessage", b"{sh}news", b"probe"]
                except (OSError, TimeoutError):
                    ok = False
            return ok

        wait_for(probe, 20, "every node's shard subscriber to get a message")
        for c in conns:  # leftovers of repeated probes
            try:
                c.sock.settimeout(0.3)
                while True:
                    c.read()
            except (OSError, TimeoutError):
                pass
            c.sock.settimeout(10)
        with RawConn(cluster.ports[1]) as pub:
            assert pub.cmd("SPUBLISH", "{sh}news", "m1") == 1
        for c in conns:
            assert c.read() == [b"smessage", b"{sh}news", b"m1"]
    finally:
        for c in conns:
            c.close()


# ---- COMMAND introspection ---------------------------------------------------------------------

def test_command_getkeys_and_list(srv):
    """COMMAND GETKEYS / GETKEYSANDFLAGS find keys as routing does (numkeys commands, SORT
    STORE), with Redis 7.0's errors and key flags; COMMAND LIST FILTERBY, COUNT, INFO, DOCS."""
    with srv.raw() as c:
        assert c.cmd("COMMAND", "GETKEYS", "GET", "key") == [b"key"]
        assert c.cmd("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
        keys = ["key%d" % i for i in range(260)]
        assert c.cmd("COMMAND", "GETKEYS", "ZUNIONSTORE", "t", 260, *keys) == \
            [b"t"] + [k.encode() for k in keys]
        assert c.cmd("COMMAND", "GETKEYS", "MEMORY", "USAGE", "k") == [b"k"]
        assert c.cmd("COMMAND", "GETKEYS", "LCS", "k1", "k2") == [b"k1", b"k2"]
        # A script may have no key (Redis 7.0's no_mandatory_keys): an empty list, no error.
        assert c.cmd("COMMAND", "GETKEYS", "EVAL", "return 1", 1, "key") == [b"key"]
        assert c.cmd("COMMAND", "GETKEYS", "EVAL", "return 1", 0) == []
        assert c.cmd("COMMAND", "GETKEYS", "FCALL", "f", 0) == []
        assert c.cmd("COMMAND", "GETKEYSANDFLAGS", "SET", "k1", "v1") == [[b"k1", ["OW", "update"]]]
        assert c.cmd("COMMAND", "GETKEYSANDFLAGS", "LMOVE", "k1", "k2", "left", "right") == \
            [[b"k1", ["RW", "access", "delete"]], [b"k2", ["RW", "insert"]]]
        assert c.cmd("COMMAND", "GETKEYSANDFLAGS", "SORT", "k1", "STORE", "k2") == \
            [[b"k1", ["RO", "access"]], [b"k2", ["OW", "update"]]]
        assert c.cmd("COMMAND", "GETKEYS", "NOSUCH", "k") == "ERR Invalid command specified"
        assert c.cmd("COMMAND", "GETKEYS", "PING") == "ERR The command has no key arguments"
        assert c.cmd("COMMAND", "GETKEYS", "GET") == \
            "ERR Invalid number of arguments specified for command"
        assert c.cmd("COMMAND", "GETKEYS", "ZUNIONSTORE", "t", 0, "a") == \
            "ERR Invalid arguments specified for command"
        listed = c.cmd("COMMAND", "LIST")
        assert b"set" in listed and b"acl|setuser" in listed and b"dump" in listed
        assert c.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "get") == [b"get"]
        assert b"config" in c.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "conf*")
        assert c.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT", "nope") == []
        assert b"get" in c.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT", "read")
        assert c.cmd("COMMAND", "LIST", "FILTERBY", "MODULE", "m") == []
        assert c.cmd("COMMAND", "LIST", "BAD").startswith("ERR syntax error")
        # Container commands' subcommands are listed as Redis 7.0 lists them, and filtered.
        assert b"client|list" in listed and b"config|get" in listed
        scripting = c.cmd("COMMAND", "LIST", "FILTERBY", "ACLCAT", "scripting")
        assert b"eval" in scripting and b"script|kill" in scripting and b"set" not in scripting
        assert b"config|resetstat" in c.cmd("COMMAND", "LIST", "FILTERBY", "PATTERN", "config|*re*")
        for name, movable in (("zunionstore", True), ("eval", True), ("sort", True),
                              ("xread", True), ("set", False), ("lmove", False)):
            assert ("movablekeys" in c.cmd("COMMAND", "INFO", name)[0][2]) == movable, name
        assert c.cmd("COMMAND", "COUNT") == len(c.cmd("COMMAND"))
        assert c.cmd("COMMAND", "INFO", "get|key") == [None]
        info = c.cmd("COMMAND", "INFO", "RESTORE")[0]
        assert info[0] == b"restore" and info[1] == -4 and info[3:6] == [1, 1, 1]
        assert any("GETKEYS" in line for line in c.cmd("COMMAND", "HELP"))
    out = subprocess.run(["redis-cli", "-p", str(srv.port), "COMMAND", "GETKEYS", "COPY", "a",
                          "b"], stdout=subprocess.PIPE, timeout=30, text=True).stdout
    assert out.split() == ["a", "b"]


# ---- GEO ---------------------------------------------------------------------------------------

def test_geo_commands(srv):
    """GEOADD/GEODIST/GEOHASH/GEOPOS give Redis's documented figures (Palermo, Catania);
    GEOSEARCH and GEORADIUS with their options, STORE/STOREDIST, and Redis's errors."""
    r = srv.client()
    assert r.geoadd("Sicily", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    assert r.geodist("Sicily", "Palermo", "Catania") == 166274.1516
    assert r.geodist("Sicily", "Palermo", "Catania", "km") == 166.2742
    assert r.geodist("Sicily", "Palermo", "nobody") is None
    assert r.geohash("Sicily", "Palermo", "Catania", "x") == ["sqc8b49rny0", "sqdtr74hyu0", None]
    with srv.raw() as c:
        assert c.cmd("GEOPOS", "Sicily", "Palermo", "x") == \
            [[b"13.36138933897018433", b"38.11555639549629859"], None]
        assert c.cmd("GEORADIUS", "Sicily", 15, 37, 200, "km", "WITHDIST", "ASC") == \
            [[b"Catania", b"56.4413"], [b"Palermo", b"190.4424"]]
        assert c.cmd("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYBOX", 400, 400, "km",
                     "DESC", "WITHHASH") == [[b"Palermo", 3479099956230698],
                                             [b"Catania", 3479447370796909]]
        assert c.cmd("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", 100, "km") == \
            [b"Palermo"]
        assert c.cmd("GEORADIUS", "Sicily", 15, 37, 200, "km", "STORE", "near") == 2
        assert c.cmd("ZRANGE", "near", 0, -1) == [b"Palermo", b"Catania"]
        assert c.cmd("GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 200,
                     "km", "STOREDIST", "COUNT", 1) == 1
        assert c.cmd("ZRANGE", "d", 0, -1, "WITHSCORES") == [b"Catania", b"56.441257870158204"]
        assert c.cmd("GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", 1, "m") == [b"Palermo"]
        errors = [
            (("GEOADD", "g", 181, 0, "m"), "ERR invalid longitude,latitude pair 181.000000,0.000000"),
            (("GEOADD", "g", "NX", "XX", 1, 1, "m"), "ERR syntax error"),
            (("GEOADD", "g", 1, 1), "ERR wrong number of arguments for 'geoadd' command"),
            (("GEODIST", "Sicily", "a", "b", "parsecs"),
             "ERR unsupported unit provided. please use M, KM, FT, MI"),
            (("GEORADIUS", "Sicily", 15, 37, -1, "km"), "ERR radius cannot be negative"),
            (("GEOSEARCH", "Sicily", "BYRADIUS", 1, "km", "ASC", "WITHDIST"),
             "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"),
            (("GEOSEARCH", "Sicily", "FROMMEMBER", "x", "BYRADIUS", 1, "km"),
             "ERR could not decode requested zset member"),
            (("GEOSEARCH", "Sicily", "FROMLONLAT", 1, 1, "BYRADIUS", 1, "km", "ANY"),
             "ERR the ANY argument requires COUNT argument"),
            (("GEORADIUS", "Sicily", 15, 37, 1, "km", "WITHDIST", "STORE", "x"),
             "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and "
             "WITHCOORD options"),
        ]
        for args, msg in errors:
            assert c.cmd(*args) == msg, args
        c.cmd("SET", "str", "x")
        assert c.cmd("GEOPOS", "str", "a").startswith("WRONGTYPE")
    r.close()


def test_geo_through_a_follower(cluster):
    """GEOADD and GEORADIUS ... STORE sent to a follower are applied on every replica (the
    search runs at apply), GEOSEARCH reads the follower's replica with READONLY, and a STORE
    destination in another partition is -CROSSSLOT."""
    key = "{geo}pts"
    lead, fol = follower_of(cluster, key)
    with RawConn(fol) as f:
        f.cmd("DEL", key, "{geo}near")
        assert f.cmd("GEOADD", key, "13.361389", "38.115556", "Palermo", "15.087269", "37.502669",
                     "Catania") == 2
        assert f.cmd("GEORADIUS", key, 15, 37, 200, "km", "STOREDIST", "{geo}near") == 2
        slot = f.cmd("CLUSTER", "KEYSLOT", key)
        other = next(k for k in ("k%d" % i for i in range(1000))
                     if abs(f.cmd("CLUSTER", "KEYSLOT", k) - slot) > 16384 // 2 - 100)
        assert f.cmd("GEOSEARCHSTORE", other, key, "FROMMEMBER", "Palermo", "BYRADIUS", 1,
                     "km") == "CROSSSLOT Keys in request don't hash to the same slot"
    want = [b"Catania", b"56.441257870158204", b"Palermo", b"190.44242984775784"]
    for p in cluster.ports:
        def applied():
            with RawConn(p) as c:
                c.cmd("READONLY")
                return c.cmd("ZRANGE", "{geo}near", 0, -1, "WITHSCORES") == want
        wait_for(applied, 10, "replica %d to apply the GEO writes" % p)
        with RawConn(p) as c:
            c.cmd("READONLY")
            assert c.cmd("GEOSEARCH", key, "FROMLONLAT", 15, 37, "BYRADIUS", 100, "km") == \
                [b"Catania"]


@pytest.mark.halyard_only
def test_watch_on_a_follower_reads_the_leaders_versions(tmp_path_factory):
    """WATCH through a follower notes the versions where reads run (the leader, after
    ReadIndex), not those of the follower's replica, which may not have applied writes already
    acknowledged: a version read there is older than the leader's, and EXEC aborted although the
    key did not change after WATCH (Redis runs it). Here the follower hears nothing from its
    leader while another client's SET is acknowledged, so its replica lags for sure."""
    from fault_proxy import leader_and_follower, send_then_heal

    with leader_and_follower(tmp_path_factory) as (c, li, fi):
        lport, fport = c.ports[li], c.ports[fi]
        with RawConn(lport) as l:
            assert l.cmd("SET", "wk", "v1") == "OK"

        def replica_get():
            with RawConn(fport) as r:
                assert r.cmd("READONLY") == "OK"
                return r.cmd("GET", "wk")
        wait_for(lambda: replica_get() == b"v1", 30, "the follower to apply the first SET")
        c.net.block(li, fi)
        with RawConn(lport) as l:
            assert l.cmd("SET", "wk", "v2") == "OK"
        assert replica_get() == b"v1"  # the follower's replica lags
        with RawConn(fport, timeout=60) as f:
            send_then_heal(c, f, fport, ("WATCH", "wk"))
            assert f.read() == "OK"
            assert f.cmd("MULTI") == "OK"
            assert f.cmd("GET", "wk") == "QUEUED"
            assert f.cmd("EXEC") == [b"v2"]
            # A write after WATCH still aborts EXEC.
            assert f.cmd("WATCH", "wk") == "OK"
            with RawConn(lport) as l:
                assert l.cmd("SET", "wk", "v3") == "OK"
            assert f.cmd("MULTI") == "OK"
            assert f.cmd("GET", "wk") == "QUEUED"
            assert f.cmd("EXEC") is None

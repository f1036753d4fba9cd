"""DUMP and RESTORE in Redis's RDB format (docs/disk-format.md "DUMP payload: Redis's RDB
format"), tested against a real Debian redis-server (7.0) started here: every type in its
small and big encodings goes Redis -> halyard and halyard -> Redis, and the values read back
with the same commands must be the same on both. Payloads in Redis 6.x's encodings (ziplists,
RDB version 9), which Redis 7.0 still restores, are built here byte by byte and must restore
alike on both servers. Corrupt payloads get Redis's errors and never stop the server.

Under HY_TARGET=redis both sides are redis-server, which checks the expectations themselves
(the tests of halyard's own legacy payloads and of corrupt payloads, where halyard is
stricter than Redis, are then skipped)."""

import random
import struct

import pytest
import redis

from conftest import IS_REDIS, start_redis_server

CHECKSUM = "DUMP payload version or checksum are wrong"
BAD = "Bad data format"


# ---- Redis's payload framing, written here from the format's definition -----------------


def _crc64_table():
    poly = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed: the register shifts right
    table = []
    for b in range(256):
        r = b
        for _ in range(8):
            r = (r >> 1) ^ poly if r & 1 else r >> 1
        table.append(r)
    return table


_CRC64 = _crc64_table()


def crc64(data):
    crc = 0
    for b in data:
        crc = _CRC64[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def frame(body, version=10):
    """type byte and value -> a whole payload: RDB version (u16 LE) and CRC-64 (u64 LE)."""
    head = body + struct.pack("<H", version)
    return head + struct.pack("<Q", crc64(head))


def refresh_crc(payload):
    return payload[:-8] + struct.pack("<Q", crc64(payload[:-8]))


def rdb_len(n):
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | n >> 8, n & 0xFF])
    return b"\x80" + struct.pack(">I", n)


def rdb_str(s):
    s = s.encode() if isinstance(s, str) else s
    return rdb_len(len(s)) + s


def ziplist(items):
    """A ziplist (Redis <= 6.2) holding items (bytes or int), every integer encoding used as
    Redis chooses it."""
    entries = []
    prev = 0
    for it in items:
        pl = bytes([prev]) if prev < 254 else b"\xfe" + struct.pack("<I", prev)
        if isinstance(it, int):
            if 0 <= it <= 12:
                enc = bytes([0xF1 + it])
            elif -128 <= it <= 127:
                enc = b"\xfe" + struct.pack("<b", it)
            elif -32768 <= it <= 32767:
                enc = b"\xc0" + struct.pack("<h", it)
            elif -(1 << 23) <= it < (1 << 23):
                enc = b"\xf0" + struct.pack("<i", it)[:3]
            elif -(1 << 31) <= it < (1 << 31):
                enc = b"\xd0" + struct.pack("<i", it)
            else:
                enc = b"\xe0" + struct.pack("<q", it)
        else:
            n = len(it)
            if n < 64:
                enc = bytes([n]) + it
            elif n < 16384:
                enc = bytes([0x40 | n >> 8, n & 0xFF]) + it
            else:
                enc = b"\x80" + struct.pack(">I", n) + it
        e = pl + enc
        entries.append(e)
        prev = len(e)
    body = b"".join(entries)
    tail = 10 + len(body) - len(entries[-1]) if entries else 10
    total = 10 + len(body) + 1
    return struct.pack("<IIH", total, tail, len(items)) + body + b"\xff"


def _backlen(n):
    if n <= 127:
        return bytes([n])
    size = 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5
    return bytes(((n >> (7 * (size - 1 - i))) & 127) | (128 if i else 0) for i in range(size))


def listpack(items):
    """A listpack (Redis 7.0) holding items (bytes or int), in every encoding of each kind."""
    body = b""
    for it in items:
        if isinstance(it, int):
            if 0 <= it <= 127:
                e = bytes([it])
            elif -4096 <= it <= 4095:
                u = it & 0x1FFF
                e = bytes([0xC0 | u >> 8, u & 0xFF])
            elif -32768 <= it <= 32767:
                e = b"\xf1" + struct.pack("<h", it)
            elif -(1 << 23) <= it < (1 << 23):
                e = b"\xf2" + struct.pack("<i", it)[:3]
            elif -(1 << 31) <= it < (1 << 31):
                e = b"\xf3" + struct.pack("<i", it)
            else:
                e = b"\xf4" + struct.pack("<q", it)
        elif len(it) < 64:
            e = bytes([0x80 | len(it)]) + it
        elif len(it) < 4096:
            e = bytes([0xE0 | len(it) >> 8, len(it) & 0xFF]) + it
        else:
            e = b"\xf0" + struct.pack("<I", len(it)) + it
        body += e + _backlen(len(e))
    return struct.pack("<IH", 6 + len(body) + 1, len(items)) + body + b"\xff"


# ---- the servers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_ref(tmp_path_factory):
    """A Debian redis-server on a free port, with deep payload checks on, so that a corrupt
    payload is refused rather than trusted."""
    s = start_redis_server(tmp_path_factory.mktemp("redis"), "--sanitize-dump-payload", "yes")
    yield s
    s.stop()


@pytest.fixture
def ref(redis_ref):
    c = redis_ref.client(decode_responses=False)
    c.flushall()
    yield c
    c.close()


# ---- values read back, the same way on both servers ------------------------------------

STREAM_VOLATILE = (b"radix-tree-keys", b"radix-tree-nodes")


def _stream_view(c, k):
    info = c.execute_command("XINFO", "STREAM", k, "FULL")
    d = dict(zip(info[0::2], info[1::2]))
    for f in STREAM_VOLATILE:
        d.pop(f, None)
    groups = []
    for g in d.pop(b"groups"):
        gd = dict(zip(g[0::2], g[1::2]))
        gd[b"consumers"] = [dict(zip(x[0::2], x[1::2])) for x in gd[b"consumers"]]
        groups.append(gd)
    d[b"groups"] = groups
    d[b"entries"] = [tuple(e) for e in d[b"entries"]]
    return d


def view(c, k):
    """Everything a client can read of key k, for comparison across servers."""
    t = c.type(k)
    if t == b"string":
        return t, c.get(k)
    if t == b"list":
        return t, c.lrange(k, 0, -1)
    if t == b"set":
        return t, sorted(c.smembers(k))
    if t == b"zset":
        return t, c.zrange(k, 0, -1, withscores=True)
    if t == b"hash":
        # Order is checked by test_small_hash_keeps_its_order: a hash table's differs.
        return t, sorted(c.hgetall(k).items())
    if t == b"stream":
        return t, _stream_view(c, k)
    raise AssertionError("unexpected type %r" % t)


# ---- every type, in small and big encodings --------------------------------------------


def _stream_with_groups(c, k):
    for i in range(1, 8):
        c.xadd(k, {"f": str(i), "g": "v" * i}, id="%d-%d" % (i, i % 3))
    c.xadd(k, {"other": "fields", "n": "-42"}, id="8-0")
    c.xadd(k, {"f": "x", "g": "y"}, id="9-0")
    c.xdel(k, "3-0", "9-0")  # deleted entries: one inside, the last one (max deleted ID)
    c.xgroup_create(k, "g1", "0")
    c.xreadgroup("g1", "alice", {k: ">"}, count=3)
    c.xreadgroup("g1", "bob", {k: ">"}, count=2)
    c.xack(k, "g1", "1-1")
    c.xgroup_create(k, "g2", "$")
    c.xgroup_create(k, "g3", "2-2")
    c.xgroup_createconsumer(k, "g3", "idle")


def _stream_many_nodes(c, k):
    for i in range(1, 260):  # beyond 100 entries a node: several nodes
        c.xadd(k, {"field": str(i) * (i % 5 + 1)}, id="%d-0" % i)
    c.xdel(k, "50-0", "150-0")
    c.xgroup_create(k, "g", "0")
    c.xreadgroup("g", "c", {k: ">"}, count=120)


def _stream_emptied(c, k):
    c.xgroup_create(k, "g", "$", mkstream=True)
    c.xadd(k, {"a": "1"}, id="5-0")
    c.xdel(k, "5-0")


CASES = [
    ("str-short", lambda c, k: c.set(k, "hello")),
    ("str-empty", lambda c, k: c.set(k, "")),
    ("str-int8", lambda c, k: c.set(k, "-12")),
    ("str-int16", lambda c, k: c.set(k, "31000")),
    ("str-int32", lambda c, k: c.set(k, "-2147483648")),
    ("str-int64", lambda c, k: c.set(k, "9223372036854775807")),
    ("str-leading-zero", lambda c, k: c.set(k, "0123")),
    ("str-binary", lambda c, k: c.set(k, bytes(range(256)))),
    ("str-lzf", lambda c, k: c.set(k, "abcdefgh" * 500 + "xyz" * 300)),
    ("str-lzf-long", lambda c, k: c.set(k, "".join("%05d" % (i % 977) for i in range(40000)))),
    ("hll", lambda c, k: c.pfadd(k, *range(500))),
    ("list-small", lambda c, k: c.rpush(k, "a", "", "b" * 70, "c" * 5000)),
    ("list-ints", lambda c, k: c.rpush(k, *[str(v) for v in (0, 127, 128, -1, 4095, -4096, 4096,
                                                             32767, -32768, 8388607, -8388608,
                                                             2147483647, -2147483648,
                                                             9223372036854775807,
                                                             -9223372036854775808, "007",
                                                             "-0", "+5")])),
    ("list-big", lambda c, k: c.rpush(k, *["item-%d-%s" % (i, "x" * (i % 50)) for i in range(3000)])),
    ("set-int16", lambda c, k: c.sadd(k, 1, 2, 3, -5, 300)),
    ("set-int32", lambda c, k: c.sadd(k, 1, 70000, -70000)),
    ("set-int64", lambda c, k: c.sadd(k, 1, 5000000000, -9223372036854775808)),
    ("set-strings", lambda c, k: c.sadd(k, "a", "b", "1", "")),
    ("set-big-ints", lambda c, k: c.sadd(k, *range(1000))),
    ("set-big", lambda c, k: c.sadd(k, *["m%d" % i for i in range(1000)])),
    ("zset-small", lambda c, k: c.zadd(k, {"a": 1.5, "b": -2, "c": 3, "d": 0, "e": 1e20, "f": 0.1})),
    ("zset-inf", lambda c, k: c.zadd(k, {"lo": float("-inf"), "hi": float("inf"), "7": 7})),
    ("zset-long-member", lambda c, k: c.zadd(k, {"m" * 100: 1, "n": 2})),
    ("zset-big", lambda c, k: c.zadd(k, {"member-%d" % i: i * 0.25 - 30 for i in range(500)})),
    ("hash-small", lambda c, k: c.hset(k, mapping={"f1": "v1", "f2": "2", "n": "-300", "e": ""})),
    ("hash-long-value", lambda c, k: c.hset(k, mapping={"a": "v" * 100, "b": "1"})),
    ("hash-big", lambda c, k: c.hset(k, mapping={"f%d" % i: "value-%d" % i for i in range(400)})),
    ("stream-small", lambda c, k: c.xadd(k, {"a": "1"}, id="1-1")),
    ("stream-groups", _stream_with_groups),
    ("stream-nodes", _stream_many_nodes),
    ("stream-emptied", _stream_emptied),
]


@pytest.mark.parametrize("name,fill", CASES, ids=[c[0] for c in CASES])
def test_redis_to_halyard_and_back(ref, rb, name, fill):
    """A value made on Redis, DUMPed there and RESTOREd on halyard, reads back the same; DUMPed
    by halyard and RESTOREd on Redis, it still reads back the same there."""
    fill(ref, name)
    payload = ref.dump(name)
    assert rb.restore(name, 0, payload) == b"OK"
    assert view(rb, name) == view(ref, name)
    back = rb.dump(name)
    assert ref.restore(name + ":back", 0, back) == b"OK"
    assert view(ref, name + ":back") == view(ref, name)


@pytest.mark.parametrize("name,fill", CASES, ids=[c[0] for c in CASES])
def test_halyard_to_redis_and_back(ref, rb, name, fill):
    """A value made by commands on halyard, DUMPed and RESTOREd on Redis, reads back there as
    it does on halyard; that copy, DUMPed by Redis, restores on halyard as the same value."""
    fill(ref, name)
    fill(rb, name)
    payload = rb.dump(name)
    assert payload[-10:-8] == b"\x0a\x00"  # RDB version 10, as Redis 7.0 writes
    assert ref.restore(name + ":h", 0, payload) == b"OK"
    # halyard's value as Redis holds it (the two originals differ only in stream times).
    assert view(ref, name + ":h") == view(rb, name)
    assert rb.restore(name + ":r", 0, ref.dump(name + ":h")) == b"OK"
    assert view(rb, name + ":r") == view(rb, name)


def test_small_hash_keeps_its_order(ref, rb):
    """A listpack hash's fields keep their order both ways, as HGETALL shows it."""
    ref.hset("h", mapping={"z": "1", "a": "2", "m": "3", "b": "4"})
    assert rb.restore("h", 0, ref.dump("h")) == b"OK"
    assert list(rb.hgetall("h")) == [b"z", b"a", b"m", b"b"]
    assert ref.restore("h2", 0, rb.dump("h")) == b"OK"
    assert list(ref.hgetall("h2")) == [b"z", b"a", b"m", b"b"]


def test_encodings_follow_redis(ref, rb):
    """A restored value takes the encoding Redis gives the same payload (OBJECT ENCODING)."""
    for name, fill in CASES:
        # Redis 7.0's HSET of 400 fields at once leaves a listpack past hash-max-listpack-
        # entries, which its RESTORE keeps; halyard converts it by the threshold.
        if name.startswith("stream") or name.startswith("str") or name == "hash-big":
            continue
        fill(ref, name)
        payload = ref.dump(name)
        assert rb.restore(name, 0, payload) == b"OK"
        assert ref.restore(name + ":copy", 0, payload) == b"OK"
        assert rb.object("encoding", name) == ref.object("encoding", name + ":copy"), name


def test_dump_bytes_match_redis_for_small_values(ref, rb):
    """For values Redis stores in one compact encoding (short strings, integers, listpack
    hashes and sorted sets, intsets) too short for Redis to compress (it tries LZF on strings
    longer than 20 bytes, halyard does not compress), halyard's DUMP is byte for byte Redis's."""
    for name, fill in CASES:
        if name in ("str-short", "str-int8", "str-int16", "str-int32", "str-int64", "str-empty",
                    "hash-small", "zset-inf", "set-int16", "set-int32"):
            fill(ref, name)
            fill(rb, name)
            assert rb.dump(name) == ref.dump(name), name


def test_dump_compresses_as_redis_does(ref, rb):
    """DUMP compresses strings (and listpacks) longer than 20 bytes with LZF when that saves
    space, as Redis does: payloads stay within a quarter of Redis's size, and Redis reads the
    compressed ones back (the round trips above)."""
    cases = dict(CASES)
    for name in ("str-lzf", "str-lzf-long", "list-big", "stream-nodes", "hll"):
        cases[name](ref, name)
        cases[name](rb, name)
        mine, theirs = rb.dump(name), ref.dump(name)
        assert len(mine) <= 1.25 * len(theirs), (name, len(mine), len(theirs))
    assert rb.dump("str-lzf-long")[1] == 0xC3  # an LZF string
    assert len(rb.dump("str-lzf-long")) < len(rb.get("str-lzf-long")) // 4


# ---- hand-built payloads: Redis 6.x's ziplists (RDB version 9), Redis 7.0's rarer forms ---

ZL_ITEMS = [b"a", b"", 0, 12, 13, -1, 127, -128, 300, -32768, 70000, -(1 << 23), 1 << 24,
            -(1 << 31), 1 << 40, b"x" * 70, b"y" * 300]

OLD_PAYLOADS = [
    ("list-quicklist-ziplist", frame(bytes([14]) + rdb_len(2) + rdb_str(ziplist(ZL_ITEMS))
                                     + rdb_str(ziplist([b"tail", 5])), 9)),
    ("list-ziplist", frame(bytes([10]) + rdb_str(ziplist([b"p", 1, b"q"])), 9)),
    ("list-linked", frame(bytes([1]) + rdb_len(3) + rdb_str("a") + b"\xc0\x05" + rdb_str("c"), 9)),
    ("hash-ziplist", frame(bytes([13]) + rdb_str(ziplist([b"f1", b"v1", b"n", 300, b"big", 1 << 40])), 9)),
    ("zset-ziplist", frame(bytes([12]) + rdb_str(ziplist([b"c", b"-inf", b"d", -70000, b"a", 1,
                                                          b"b", b"2.5"])), 9)),
    ("zset-text-scores", frame(bytes([3]) + rdb_len(3) + rdb_str("a") + b"\x031.5" + rdb_str("b")
                               + b"\xfe" + rdb_str("c") + b"\xff", 9)),
    ("set-plain", frame(bytes([2]) + rdb_len(2) + rdb_str("x") + b"\xc1\x10\x27", 9)),
    ("hash-plain", frame(bytes([4]) + rdb_len(1) + rdb_str("f") + rdb_str("v"), 9)),
    # A zipmap (Redis < 2.6): count, then field length, field, value length, free, value,
    # padding; a 300-byte value takes the 5-byte length.
    ("hash-zipmap", frame(bytes([9]) + rdb_str(b"\x02\x03foo\x03\x02bar\x00\x00\x01k\xfe"
                                                + struct.pack("<I", 300) + b"\x00" + b"z" * 300
                                                + b"\xff"), 9)),
    ("str-int-enc", frame(b"\x00\xc2\x00\x00\x00\x80", 9)),
    # Redis 7.0's own types built by hand: a quicklist with a plain node (Redis writes those
    # only for elements of 1 GB and more) between listpack nodes, every listpack encoding.
    ("list-quicklist2-plain", frame(bytes([18]) + rdb_len(3)
                                    + rdb_len(2) + rdb_str(listpack([b"a", 5, 200, -3000, 30000,
                                                                     -70000, 1 << 30, -(1 << 40),
                                                                     b"s" * 70, b"t" * 5000]))
                                    + rdb_len(1) + rdb_str("a plain node's element")
                                    + rdb_len(2) + rdb_str(listpack([b"", 0])))),
    ("hash-listpack", frame(bytes([16]) + rdb_str(listpack([b"f", b"v", b"n", -1, b"big", 1 << 33])))),
    ("zset-listpack", frame(bytes([17]) + rdb_str(listpack([b"m", -5, b"n", b"0.5", b"o", 4000])))),
]


@pytest.mark.parametrize("name,payload", OLD_PAYLOADS, ids=[p[0] for p in OLD_PAYLOADS])
def test_hand_built_payloads(ref, rb, name, payload):
    """Hand-built payloads in the encodings Redis 6.x wrote, and in Redis 7.0's listpacks with
    every entry encoding and a plain quicklist node, restore alike on both servers."""
    assert ref.restore(name, 0, payload) == b"OK"
    assert rb.restore(name, 0, payload) == b"OK"
    assert view(rb, name) == view(ref, name)


def test_stream_rdb9_payload_from_redis_suite(ref, rb):
    """The STREAM_LISTPACKS (type 15, RDB 9, LZF-compressed listpack) payload of Redis's own
    stream-cgroups test: entries-read and lag are estimated as Redis estimates them."""
    payload = bytes.fromhex(
        "0f011000000000000000010000000000000000c3404a40571657000000230002010401010184646174610500"
        "0103010020010381610204200a0001400a0062600a0002400a0063600a4022018164200a4039200a0065600a"
        "0005400a0066200a00ff02060002026731050004000000000000000100000000000000003ef783437a010000"
        "01000000000000000200000000000000003ef783437a01000001000000000000000400000000000000003ef7"
        "83437a01000001000000000000000500000000000000003ef783437a0100000101036331313ef783437a0100"
        "0004000000000000000100000000000000000000000000000002000000000000000000000000000000040000"
        "000000000000000000000000000500000000000000000267320000000009003d52ef6867521dfa")
    assert ref.restore("x", 0, payload) == b"OK"
    assert rb.restore("x", 0, payload) == b"OK"
    assert view(rb, "x") == view(ref, "x")
    groups = view(rb, "x")[1][b"groups"]
    assert [g[b"entries-read"] for g in groups] == [1, 0]
    assert [g[b"lag"] for g in groups] == [1, 2]


# ---- corrupt payloads ------------------------------------------------------------------


def unordered(v):
    """A view for corrupt payloads both servers took: without the order of sorted set members
    (Redis trusts the order of a listpack it restores, halyard sorts), and without a stream's
    recorded first ID (Redis shows the payload's field, halyard its first entry's ID)."""
    t, x = v
    if t == b"zset":
        return t, sorted(x)
    if t == b"stream":
        return t, {f: y for f, y in x.items() if f != b"recorded-first-entry-id"}
    return v


def _error(c, *args):
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command(*args)
    return str(e.value)


@pytest.mark.halyard_only  # Redis takes bytes after the value, and more without deep checks
def test_corrupt_payloads_get_redis_errors(ref, rb):
    """A flipped byte or a truncation fails the checksum; a corrupt value behind a valid
    checksum is "Bad data format"; neither ever stops the server."""
    CASES_BY_NAME = dict(CASES)
    for name in ("str-short", "list-ints", "set-int32", "zset-small", "hash-small",
                 "stream-groups", "str-lzf"):
        CASES_BY_NAME[name](ref, name)
        p = ref.dump(name)
        assert CHECKSUM in _error(rb, "RESTORE", "k", 0, p[:-1])
        assert CHECKSUM in _error(rb, "RESTORE", "k", 0, p[:3] + bytes([p[3] ^ 0x40]) + p[4:])
        # The value cut short (frame and checksum made whole again).
        body = p[:-10]
        assert BAD in _error(rb, "RESTORE", "k", 0, frame(body[:len(body) // 2]))
        # Bytes after the value.
        assert BAD in _error(rb, "RESTORE", "k", 0, frame(p[:-10] + b"\x00"))
    assert CHECKSUM in _error(rb, "RESTORE", "k", 0, frame(b"\x00\x03abc", version=11))
    assert BAD in _error(rb, "RESTORE", "k", 0, frame(b"\x00\x10abc"))  # a length past the end
    assert BAD in _error(rb, "RESTORE", "k", 0, frame(b"\x63\x00"))  # no such type
    assert BAD in _error(rb, "RESTORE", "k", 0, frame(b"\x02\x00"))  # an empty set
    assert BAD in _error(rb, "RESTORE", "k", 0, frame(b"\x04\x02\x01a\x01b\x01a\x01c"))  # field twice
    assert BAD in _error(rb, "RESTORE", "k", 0, frame(b"\x00\xc3\x02\x10ab"))  # LZF: 16 from 2
    assert "module" in _error(rb, "RESTORE", "k", 0, frame(b"\x07\x81" + b"\x00" * 12))
    assert rb.exists("k") == 0
    assert rb.ping()


@pytest.mark.halyard_only
def test_flipped_bytes_behind_a_valid_checksum(ref, rb):
    """Every single-byte corruption of real payloads, checksum recomputed: halyard answers OK
    or "Bad data format", refuses what Redis (deep checks on) refuses as bad data, and when
    both accept, both read back the same value."""
    rnd = random.Random(13)
    CASES_BY_NAME = dict(CASES)
    for name in ("list-ints", "set-int32", "zset-small", "hash-small", "stream-groups",
                 "str-lzf", "list-small"):
        CASES_BY_NAME[name](ref, name)
        p = ref.dump(name)
        positions = list(range(len(p) - 10))
        if len(positions) > 150:
            positions = rnd.sample(positions, 150)
        for i in positions:
            bad = refresh_crc(p[:i] + bytes([p[i] ^ (1 << rnd.randrange(8))]) + p[i + 1:])
            try:
                mine = rb.restore("k", 0, bad, replace=True)
            except redis.ResponseError as e:
                assert BAD in str(e), (name, i, str(e))
                mine = None
            try:
                theirs = ref.restore("k", 0, bad, replace=True)
            except redis.ResponseError as e:
                theirs = None
            if mine is not None and theirs is not None:
                assert unordered(view(rb, "k")) == unordered(view(ref, "k")), (name, i)
            if theirs is None:
                assert mine is None, (name, i, "Redis refuses, halyard took it")
    assert rb.ping()


@pytest.mark.halyard_only
def test_halyard_own_payloads_still_restore(rb):
    """halyard's earlier DUMP format (version 1, CRC32C) is still accepted by RESTORE: the
    string "bar" as docs/disk-format.md gives it."""
    import zlib  # noqa: F401 - CRC32C is not in the standard library: build it by hand

    def crc32c(data):
        crc = 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        return crc ^ 0xFFFFFFFF

    body = b"\x01\x03bar\x01\x00"
    assert rb.restore("old", 0, body + struct.pack("<I", crc32c(body))) == b"OK"
    assert rb.get("old") == b"bar"
    body = b"\x03\x02\x01a\x01b\x01\x00"  # a list of two
    assert rb.restore("oldl", 0, body + struct.pack("<I", crc32c(body))) == b"OK"
    assert rb.lrange("oldl", 0, -1) == [b"a", b"b"]


# ---- through a follower of a cluster ---------------------------------------------------


@pytest.mark.halyard_only
def test_redis_payload_through_a_follower_reaches_every_replica(ref, tmp_path_factory):
    """A Redis payload (a stream with groups, its PEL and a deleted entry; a Redis 6 quicklist
    of ziplists) RESTOREd through a follower is applied on every replica alike: the node turns
    it into halyard's own payload before proposing, and every replica then DUMPs the same bytes."""
    from cluster import Cluster
    from conftest import RawConn, wait_for
    from test_commands_misc import follower_of

    _stream_with_groups(ref, "s")
    payloads = {"{rdb}s": ref.dump("s"), "{rdb}l": OLD_PAYLOADS[0][1]}
    c = Cluster(tmp_path_factory, 3, {"partitions": 2})
    c.start_all()
    try:
        lead, fol = follower_of(c, "{rdb}s")
        with RawConn(fol) as f:
            for k, p in payloads.items():
                assert f.cmd("RESTORE", k, 0, p) == "OK"
            assert f.cmd("RESTORE", "{rdb}bad", 0, refresh_crc(payloads["{rdb}s"][:-11]
                                                                + payloads["{rdb}s"][-10:])) \
                == "ERR " + BAD
        with RawConn(lead) as ld:
            want = {k: ld.cmd("DUMP", k) for k in payloads}
            assert ld.cmd("XLEN", "{rdb}s") == ref.xlen("s")

        def replica_dumps(port):
            with RawConn(port) as r:
                assert r.cmd("READONLY") == "OK"
                return {k: r.cmd("DUMP", k) for k in payloads}

        for port in c.ports:
            wait_for(lambda: replica_dumps(port) == want, 10, "replica %d to apply RESTORE" % port)
    finally:
        errors = c.stop_all()
        assert not errors, "\n".join(errors)

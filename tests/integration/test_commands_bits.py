"""Bitmap commands (SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO), HyperLogLog
(PFADD PFCOUNT PFMERGE) and LCS/SUBSTR: replies and error texts as Redis 7.0 gives them, and
these writes sent to a follower of a 3-node cluster applied identically on every replica."""

import pytest

from cluster import Cluster, info
from conftest import RawConn, wait_for

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"


def test_setbit_getbit(raw):
    """SETBIT answers the old bit and grows the string with zeros; GETBIT reads zeros past the
    end; bad offsets and bits are refused with Redis's texts."""
    assert raw.cmd("SETBIT", "b", 7, 1) == 0
    assert raw.cmd("SETBIT", "b", 7, 1) == 1
    assert raw.cmd("GET", "b") == b"\x01"
    assert raw.cmd("SETBIT", "b", 17, 1) == 0
    assert raw.cmd("GET", "b") == b"\x01\x00\x40"
    assert raw.cmd("GETBIT", "b", 17) == 1
    assert raw.cmd("GETBIT", "b", 1000) == 0
    assert raw.cmd("GETBIT", "none", 0) == 0
    assert raw.cmd("SETBIT", "b", -1, 1) == BIT_OFFSET
    assert raw.cmd("SETBIT", "b", 4294967296, 1) == BIT_OFFSET
    assert raw.cmd("SETBIT", "b", 0, 2) == "ERR bit is not an integer or out of range"
    assert raw.cmd("GETBIT", "b", "x") == BIT_OFFSET
    raw.cmd("LPUSH", "l", "a")
    assert raw.cmd("SETBIT", "l", 0, 1) == WRONGTYPE
    assert raw.cmd("GETBIT", "l", 0) == WRONGTYPE


def test_bitcount_bitpos(raw):
    """BITCOUNT and BITPOS over the whole string, BYTE and BIT ranges, negative indexes, and
    BITPOS's clear-bit answer past the end unless an end is given."""
    raw.cmd("SET", "s", "foobar")
    assert raw.cmd("BITCOUNT", "s") == 26
    assert raw.cmd("BITCOUNT", "s", 0, 0) == 4
    assert raw.cmd("BITCOUNT", "s", 1, 1) == 6
    assert raw.cmd("BITCOUNT", "s", 1, 1, "BYTE") == 6
    assert raw.cmd("BITCOUNT", "s", 5, 30, "BIT") == 17
    assert raw.cmd("BITCOUNT", "s", -2, -1) == 7
    assert raw.cmd("BITCOUNT", "s", -1, -2) == 0
    assert raw.cmd("BITCOUNT", "none") == 0
    assert raw.cmd("BITCOUNT", "s", 0) == "ERR syntax error"
    assert raw.cmd("BITCOUNT", "s", 0, 1, "WORD") == "ERR syntax error"
    raw.cmd("SET", "p", b"\xff\xf0\x00")
    assert raw.cmd("BITPOS", "p", 0) == 12
    assert raw.cmd("BITPOS", "p", 1, 2) == -1
    assert raw.cmd("BITPOS", "p", 0, 0, 0) == -1
    assert raw.cmd("BITPOS", "p", 1, 7, 15, "BIT") == 7
    raw.cmd("SET", "f", b"\xff\xff")
    assert raw.cmd("BITPOS", "f", 0) == 16
    assert raw.cmd("BITPOS", "f", 0, 0, -1) == -1
    assert raw.cmd("BITPOS", "none", 1) == -1
    assert raw.cmd("BITPOS", "none", 0) == 0
    assert raw.cmd("BITPOS", "p", 2) == "ERR The bit argument must be 1 or 0."


def test_bitop(raw):
    """BITOP AND/OR/XOR/NOT zero-pads shorter sources, answers the result's length and deletes
    the destination when every source is empty."""
    raw.cmd("SET", "a", b"\x0f\xf0")
    raw.cmd("SET", "b", b"\xff")
    assert raw.cmd("BITOP", "AND", "d", "a", "b") == 2
    assert raw.cmd("GET", "d") == b"\x0f\x00"
    assert raw.cmd("BITOP", "or", "d", "a", "b") == 2
    assert raw.cmd("GET", "d") == b"\xff\xf0"
    assert raw.cmd("BITOP", "XOR", "d", "a", "b") == 2
    assert raw.cmd("GET", "d") == b"\xf0\xf0"
    assert raw.cmd("BITOP", "NOT", "d", "a") == 2
    assert raw.cmd("GET", "d") == b"\xf0\x0f"
    assert raw.cmd("BITOP", "AND", "d", "none") == 0
    assert raw.cmd("EXISTS", "d") == 0
    assert raw.cmd("BITOP", "NOT", "d", "a", "b") == \
        "ERR BITOP NOT must be called with a single source key."
    assert raw.cmd("BITOP", "NAND", "d", "a") == "ERR syntax error"
    raw.cmd("LPUSH", "l", "x")
    assert raw.cmd("BITOP", "OR", "d", "a", "l") == WRONGTYPE


def test_bitfield(raw):
    """BITFIELD SET/GET/INCRBY with the overflow rules; BITFIELD_RO refuses writes."""
    assert raw.cmd("BITFIELD", "f", "SET", "i8", 0, 100, "GET", "i8", 0) == [0, 100]
    assert raw.cmd("BITFIELD", "f", "INCRBY", "i8", 0, 100) == [-56]
    assert raw.cmd("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", 0, -200) == [-128]
    assert raw.cmd("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "i8", 0, -1) == [None]
    assert raw.cmd("BITFIELD", "f", "SET", "u4", "#1", 15, "GET", "u8", 0) == [0, 143]
    assert raw.cmd("BITFIELD_RO", "f", "GET", "u4", 4) == [15]
    assert raw.cmd("BITFIELD", "none", "GET", "u8", 0) == [0]
    assert raw.cmd("EXISTS", "none") == 0
    assert raw.cmd("BITFIELD_RO", "f", "SET", "u8", 0, 1) == \
        "ERR BITFIELD_RO only supports the GET subcommand"
    assert raw.cmd("BITFIELD", "f", "GET", "u64", 0).startswith(
        "ERR Invalid bitfield type. Use something like i16 u8.")
    assert raw.cmd("BITFIELD", "f", "OVERFLOW", "MAYBE") == \
        "ERR Invalid OVERFLOW type specified"
    assert raw.cmd("BITFIELD", "f", "GET", "u8") == "ERR syntax error"


def test_lcs_and_substr(raw):
    """LCS's string, LEN, and IDX with MINMATCHLEN/WITHMATCHLEN as Redis 7.0's; SUBSTR is
    GETRANGE."""
    raw.cmd("SET", "a", "ohmytext")
    raw.cmd("SET", "b", "mynewtext")
    assert raw.cmd("LCS", "a", "b") == b"mytext"
    assert raw.cmd("LCS", "a", "b", "LEN") == 6
    assert raw.cmd("LCS", "a", "b", "IDX") == [
        b"matches", [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len", 6]
    assert raw.cmd("LCS", "a", "b", "IDX", "MINMATCHLEN", 4, "WITHMATCHLEN") == [
        b"matches", [[[4, 7], [5, 8], 4]], b"len", 6]
    assert raw.cmd("LCS", "a", "none") == b""
    assert raw.cmd("LCS", "a", "b", "LEN", "IDX") == \
        "ERR If you want both the length and indexes, please just use IDX."
    raw.cmd("LPUSH", "l", "x")
    assert raw.cmd("LCS", "a", "l") == "ERR The specified keys must contain string values"
    assert raw.cmd("SUBSTR", "a", 2, 3) == b"my"


def test_hyperloglog(raw):
    """PFADD answers whether the HLL changed; PFCOUNT gives Redis's own estimates and caches
    them in the value (byte 15's top bit marks the cache stale); PFMERGE unions; non-HLL
    strings are refused and a corrupt one is reported."""
    assert raw.cmd("PFADD", "h") == 1
    assert raw.cmd("PFCOUNT", "h") == 0
    assert raw.cmd("PFADD", "h", "a", "b", "c") == 1
    assert raw.cmd("PFADD", "h", "a") == 0
    assert raw.cmd("GETRANGE", "h", 15, 15) == b"\x80"
    assert raw.cmd("PFCOUNT", "h") == 3
    assert raw.cmd("GETRANGE", "h", 15, 15) == b"\x00"
    assert raw.cmd("STRLEN", "h") == 27  # sparse, as Redis's
    assert raw.cmd("PFADD", "g", *range(1, 1001)) == 1
    assert raw.cmd("PFCOUNT", "g") == 1001
    assert raw.cmd("PFMERGE", "m", "h", "g") == "OK"
    assert raw.cmd("PFCOUNT", "m") == 1004
    assert raw.cmd("PFCOUNT", "h", "g", "none") == 1004
    raw.cmd("SET", "s", "notanhll")
    assert raw.cmd("PFADD", "s", 1) == "WRONGTYPE Key is not a valid HyperLogLog string value."
    raw.cmd("APPEND", "h", "hello")
    assert raw.cmd("PFCOUNT", "h") == "INVALIDOBJ Corrupted HLL object detected"
    raw.cmd("LPUSH", "l", "x")
    assert raw.cmd("PFCOUNT", "l") == WRONGTYPE


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


def _replica_value(port, key):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return c.cmd("GET", key)


@pytest.mark.halyard_only
def test_bit_and_key_writes_through_a_follower_reach_every_replica(cluster):
    """SETBIT, BITOP, BITFIELD, COPY, SORT ... STORE, PFADD and PFCOUNT (which caches the count
    in the value) sent to a follower are applied on every replica, which end with the same
    values."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10,
             "the follower to learn who leads")
    with RawConn(cluster.ports[fi]) as f:
        for off in (1, 9, 30, 31):
            assert f.cmd("SETBIT", "{t}a", off, 1) == 0
        assert f.cmd("BITFIELD", "{t}b", "SET", "u8", 8, 255, "INCRBY", "i4", 0, 9) == [0, -7]
        assert f.cmd("BITOP", "XOR", "{t}c", "{t}a", "{t}b") == 4
        assert f.cmd("BITCOUNT", "{t}c") == 12
        want = f.cmd("GET", "{t}c")
        assert f.cmd("COPY", "{t}c", "{t}d") == 1
        assert f.cmd("SADD", "{t}s", 5, 3, 9, 1) == 4
        assert f.cmd("SORT", "{t}s", "DESC", "STORE", "{t}sorted") == 4
        assert f.cmd("PFADD", "{t}hll", *range(100)) == 1
        assert f.cmd("PFCOUNT", "{t}hll") == 100
        hll = f.cmd("GET", "{t}hll")
    assert want == bytes([0x40 ^ 0x90, 0x40 ^ 0xff, 0, 3])
    for i in range(3):
        wait_for(lambda: _replica_value(cluster.ports[i], "{t}c") == want, 10,
                 "replica %d to apply the bit writes" % i)
        wait_for(lambda: _replica_value(cluster.ports[i], "{t}d") == want, 10,
                 "replica %d to apply COPY" % i)
        wait_for(lambda: _replica_value(cluster.ports[i], "{t}hll") == hll, 10,
                 "replica %d to apply PFADD and PFCOUNT" % i)
        with RawConn(cluster.ports[i]) as c:
            assert c.cmd("READONLY") == "OK"
            wait_for(lambda: c.cmd("LRANGE", "{t}sorted", 0, -1) == [b"9", b"5", b"3", b"1"], 10,
                     "replica %d to apply SORT STORE" % i)

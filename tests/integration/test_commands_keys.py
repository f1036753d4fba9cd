"""Keyspace commands: EXISTS DEL UNLINK TYPE RENAME(NX) KEYS SCAN DBSIZE FLUSH* and TTLs."""

import time

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def test_exists_del_unlink(raw):
    """EXISTS counts repeated keys each time; DEL/UNLINK return how many keys they removed."""
    raw.cmd("MSET", "a", "1", "b", "2", "c", "3")
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("EXISTS", "a") == 1
    assert raw.cmd("EXISTS", "a", "a", "b", "nope", "h") == 4
    assert raw.cmd("DEL", "a", "nope", "a") == 1
    assert raw.cmd("EXISTS", "a") == 0
    assert raw.cmd("UNLINK", "b", "h", "zz") == 2
    assert raw.cmd("EXISTS", "b", "h") == 0
    assert raw.cmd("DEL", "nope") == 0
    assert raw.cmd("DBSIZE") == 1
    assert raw.cmd("EXISTS") == arity("exists")
    assert raw.cmd("DEL") == arity("del")
    assert raw.cmd("UNLINK") == arity("unlink")


def test_type(raw):
    """TYPE reports string, hash and none."""
    raw.cmd("SET", "s", "v")
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("TYPE", "s") == "string"
    assert raw.cmd("TYPE", "h") == "hash"
    assert raw.cmd("TYPE", "nope") == "none"
    assert raw.cmd("TYPE") == arity("type")


def test_rename(raw):
    """RENAME moves value and TTL, overwrites the target, errors on a missing source."""
    raw.cmd("SET", "a", "1", "EX", "100")
    raw.cmd("HSET", "b", "f", "v")
    assert raw.cmd("RENAME", "a", "b") == "OK"
    assert raw.cmd("EXISTS", "a") == 0
    assert raw.cmd("GET", "b") == b"1"
    assert 95 <= raw.cmd("TTL", "b") <= 100
    assert raw.cmd("RENAME", "nope", "x") == "ERR no such key"
    assert raw.cmd("RENAME", "b", "b") == "OK"
    assert raw.cmd("GET", "b") == b"1"
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("RENAME", "h", "h2") == "OK"
    assert raw.cmd("HGET", "h2", "f") == b"v"
    assert raw.cmd("RENAME", "h2") == arity("rename")


def test_renamenx(raw):
    """RENAMENX refuses to overwrite an existing key (0) and renames otherwise (1)."""
    raw.cmd("SET", "a", "1")
    raw.cmd("SET", "b", "2")
    assert raw.cmd("RENAMENX", "a", "b") == 0
    assert raw.cmd("GET", "a") == b"1"
    assert raw.cmd("RENAMENX", "a", "c") == 1
    assert raw.cmd("GET", "c") == b"1"
    assert raw.cmd("EXISTS", "a") == 0
    assert raw.cmd("RENAMENX", "nope", "x") == "ERR no such key"
    assert raw.cmd("RENAMENX", "c", "c") == 0


def test_rename_clears_target_ttl(raw):
    """RENAME of a persistent key over a volatile key leaves no TTL."""
    raw.cmd("SET", "a", "1")
    raw.cmd("SET", "b", "2", "EX", "100")
    assert raw.cmd("RENAME", "a", "b") == "OK"
    assert raw.cmd("TTL", "b") == -1


def test_keys_patterns(raw):
    """KEYS matches glob patterns: * ? [set] [^set] [a-z] and backslash escapes."""
    for k in ["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "other"]:
        raw.cmd("SET", k, "1")
    def keys(p):
        return sorted(x.decode() for x in raw.cmd("KEYS", p))
    assert keys("h?llo") == ["h*llo", "hallo", "hello", "hxllo"]
    assert keys("h*llo") == ["h*llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]
    assert keys("h[ae]llo") == ["hallo", "hello"]
    assert keys("h[^e]llo") == ["h*llo", "hallo", "hxllo"]
    assert keys("h[a-b]llo") == ["hallo"]
    assert keys("h\\*llo") == ["h*llo"]
    assert keys("nomatch*") == []
    assert len(keys("*")) == 7
    assert raw.cmd("KEYS") == arity("keys")


def test_dbsize_flushall_flushdb(raw):
    """DBSIZE counts keys; FLUSHDB and FLUSHALL (with SYNC/ASYNC) empty the keyspace."""
    assert raw.cmd("DBSIZE") == 0
    raw.cmd("MSET", "a", "1", "b", "2")
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("DBSIZE") == 3
    assert raw.cmd("FLUSHDB") == "OK"
    assert raw.cmd("DBSIZE") == 0
    raw.cmd("SET", "a", "1")
    assert raw.cmd("FLUSHALL", "SYNC") == "OK"
    assert raw.cmd("DBSIZE") == 0
    raw.cmd("SET", "a", "1")
    assert raw.cmd("FLUSHALL", "ASYNC") == "OK"
    assert raw.cmd("GET", "a") is None
    raw.cmd("SET", "a", "1")
    assert raw.cmd("FLUSHDB", "ASYNC") == "OK"
    assert raw.cmd("DBSIZE") == 0
    assert raw.cmd("FLUSHALL", "BOGUS") == SYNTAX
    assert raw.cmd("DBSIZE", "x") == arity("dbsize")


def scan_all(raw, *opts):
    cursor = b"0"
    seen = []
    for _ in range(100000):
        reply = raw.cmd("SCAN", cursor, *opts)
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, keys = reply
        seen.extend(keys)
        if cursor == b"0":
            return seen
    raise AssertionError("SCAN did not terminate")


def test_scan_full_iteration(raw):
    """A full SCAN returns every key at least once and ends with cursor 0."""
    n = 1000
    for i in range(0, n, 100):
        raw.cmd("MSET", *[x for j in range(i, i + 100) for x in ("key:%d" % j, "v")])
    seen = scan_all(raw)
    assert set(seen) == {b"key:%d" % i for i in range(n)}
    seen = scan_all(raw, "COUNT", "7")
    assert set(seen) == {b"key:%d" % i for i in range(n)}


def test_scan_match_and_type(raw):
    """SCAN MATCH filters by glob and TYPE by value type."""
    for i in range(50):
        raw.cmd("SET", "s:%d" % i, "v")
        raw.cmd("HSET", "h:%d" % i, "f", "v")
    assert set(scan_all(raw, "MATCH", "s:1*")) == {b"s:1"} | {b"s:1%d" % i for i in range(10)}
    assert set(scan_all(raw, "TYPE", "hash")) == {b"h:%d" % i for i in range(50)}
    assert set(scan_all(raw, "TYPE", "string", "COUNT", "5")) == {b"s:%d" % i for i in range(50)}
    assert set(scan_all(raw, "MATCH", "h:4*", "TYPE", "hash", "COUNT", "1000")) == {b"h:4"} | {b"h:4%d" % i for i in range(10)}
    assert scan_all(raw, "TYPE", "string", "MATCH", "h:*") == []


def test_scan_errors(raw):
    """SCAN rejects a non-numeric cursor, COUNT 0 and unknown options with exact errors."""
    assert raw.cmd("SCAN", "abc") == "ERR invalid cursor"
    assert raw.cmd("SCAN", "0", "COUNT", "0") == SYNTAX
    assert raw.cmd("SCAN", "0", "COUNT", "x") == NOT_INT
    assert raw.cmd("SCAN", "0", "BOGUS", "1") == SYNTAX
    assert raw.cmd("SCAN", "0", "MATCH") == SYNTAX
    assert raw.cmd("SCAN") == arity("scan")


def test_scan_empty(raw):
    """SCAN of an empty keyspace returns cursor 0 and no keys."""
    assert raw.cmd("SCAN", "0") == [b"0", []]


def test_expire_family_sets_ttl(raw):
    """EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT set TTLs visible via TTL/PTTL/EXPIRETIME/PEXPIRETIME."""
    raw.cmd("SET", "k", "v")
    assert raw.cmd("EXPIRE", "k", "100") == 1
    assert 95 <= raw.cmd("TTL", "k") <= 100
    assert raw.cmd("PEXPIRE", "k", "50000") == 1
    assert 45000 <= raw.cmd("PTTL", "k") <= 50000
    at = int(time.time()) + 1000
    assert raw.cmd("EXPIREAT", "k", str(at)) == 1
    assert raw.cmd("EXPIRETIME", "k") == at
    assert raw.cmd("PEXPIRETIME", "k") == at * 1000
    pat = int(time.time() * 1000) + 123456
    assert raw.cmd("PEXPIREAT", "k", str(pat)) == 1
    assert raw.cmd("PEXPIRETIME", "k") == pat
    assert raw.cmd("EXPIRETIME", "k") == (pat + 500) // 1000
    assert raw.cmd("EXPIRE", "nope", "100") == 0
    assert raw.cmd("PEXPIRE", "nope", "100") == 0
    assert raw.cmd("EXPIREAT", "nope", str(at)) == 0
    assert raw.cmd("PEXPIREAT", "nope", str(pat)) == 0


def test_ttl_special_values(raw):
    """TTL/PTTL/EXPIRETIME/PEXPIRETIME answer -2 for missing keys and -1 without a TTL."""
    raw.cmd("SET", "k", "v")
    for c in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        assert raw.cmd(c, "nope") == -2, c
        assert raw.cmd(c, "k") == -1, c


def test_expire_in_past_deletes(raw):
    """A zero/negative EXPIRE or a past EXPIREAT deletes the key at once (reply 1)."""
    raw.cmd("MSET", "a", "1", "b", "2", "c", "3", "d", "4")
    assert raw.cmd("EXPIRE", "a", "0") == 1
    assert raw.cmd("PEXPIRE", "b", "-100") == 1
    assert raw.cmd("EXPIREAT", "c", str(int(time.time()) - 10)) == 1
    assert raw.cmd("PEXPIREAT", "d", "1") == 1
    assert raw.cmd("EXISTS", "a", "b", "c", "d") == 0
    assert raw.cmd("DBSIZE") == 0


def test_expire_options(raw):
    """EXPIRE NX/XX/GT/LT (Redis 7) only change the TTL when their condition holds."""
    raw.cmd("SET", "k", "v")
    assert raw.cmd("EXPIRE", "k", "100", "XX") == 0
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("EXPIRE", "k", "100", "GT") == 0  # no TTL counts as infinite
    assert raw.cmd("EXPIRE", "k", "100", "LT") == 1
    assert raw.cmd("EXPIRE", "k", "200", "NX") == 0
    assert raw.cmd("EXPIRE", "k", "200", "GT") == 1
    assert 195 <= raw.cmd("TTL", "k") <= 200
    assert raw.cmd("EXPIRE", "k", "50", "GT") == 0
    assert raw.cmd("EXPIRE", "k", "50", "XX") == 1
    assert 45 <= raw.cmd("TTL", "k") <= 50
    assert raw.cmd("EXPIRE", "k", "10", "NX", "XX") == "ERR NX and XX, GT or LT options at the same time are not compatible"
    assert raw.cmd("EXPIRE", "k", "10", "GT", "LT") == "ERR GT and LT options at the same time are not compatible"
    assert raw.cmd("EXPIRE", "k", "10", "FOO") == "ERR Unsupported option FOO"


def test_expire_errors(raw):
    """Non-integer and overflowing expire times are refused with exact errors."""
    raw.cmd("SET", "k", "v")
    assert raw.cmd("EXPIRE", "k", "abc") == NOT_INT
    assert raw.cmd("PEXPIRE", "k", "1.5") == NOT_INT
    assert raw.cmd("EXPIREAT", "k", "x") == NOT_INT
    assert raw.cmd("EXPIRE", "k", "9223372036854775807") == "ERR invalid expire time in 'expire' command"
    assert raw.cmd("PEXPIRE", "k", "9223372036854775807") == "ERR invalid expire time in 'pexpire' command"
    assert raw.cmd("EXPIREAT", "k", "9223372036854775807") == "ERR invalid expire time in 'expireat' command"
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("EXPIRE", "k") == arity("expire")
    assert raw.cmd("TTL") == arity("ttl")
    assert raw.cmd("PERSIST") == arity("persist")


def test_persist(raw):
    """PERSIST removes a TTL (1) and is a no-op (0) on persistent or missing keys."""
    raw.cmd("SET", "k", "v", "EX", "100")
    assert raw.cmd("PERSIST", "k") == 1
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("PERSIST", "k") == 0
    assert raw.cmd("PERSIST", "nope") == 0


def test_ttl_on_hash(raw):
    """Expiry applies to hashes too, and HSET on an existing hash keeps its TTL."""
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("EXPIRE", "h", "100") == 1
    raw.cmd("HSET", "h", "g", "w")
    assert 95 <= raw.cmd("TTL", "h") <= 100


def test_del_removes_ttl(raw):
    """A key deleted and re-created does not inherit the old TTL."""
    raw.cmd("SET", "k", "v", "EX", "100")
    raw.cmd("DEL", "k")
    raw.cmd("SET", "k", "v")
    assert raw.cmd("TTL", "k") == -1


def test_redis_py_key_commands(r):
    """python3-redis helpers for key commands return the documented Python values."""
    r.set("a", "1")
    assert r.exists("a", "b") == 1
    assert r.expire("a", 100) is True
    assert 0 < r.ttl("a") <= 100
    assert r.persist("a") is True
    assert r.rename("a", "b") is True
    assert r.type("b") == "string"
    assert sorted(r.scan_iter(match="*")) == ["b"]
    assert r.keys() == ["b"]
    assert r.dbsize() == 1
    assert r.flushdb() is True
    assert r.dbsize() == 0


def test_copy(raw):
    """COPY copies any type with its expiry, refuses an existing destination without REPLACE,
    the same key, and databases other than 0; the copy is independent of its source."""
    raw.cmd("RPUSH", "l", "a", "b")
    raw.cmd("PEXPIRE", "l", 100000)
    assert raw.cmd("COPY", "l", "l2") == 1
    assert raw.cmd("LRANGE", "l2", 0, -1) == [b"a", b"b"]
    assert 0 < raw.cmd("PTTL", "l2") <= 100000
    raw.cmd("RPUSH", "l2", "c")
    assert raw.cmd("LLEN", "l") == 2
    raw.cmd("SET", "s", "v")
    assert raw.cmd("COPY", "s", "l2") == 0
    assert raw.cmd("COPY", "s", "l2", "REPLACE") == 1
    assert raw.cmd("GET", "l2") == b"v"
    assert raw.cmd("COPY", "s", "x", "DB", 0) == 1
    assert raw.cmd("COPY", "none", "y") == 0
    assert raw.cmd("COPY", "s", "s") == "ERR source and destination objects are the same"
    assert raw.cmd("COPY", "s", "z", "DB", 1) == "ERR DB index is out of range"
    assert raw.cmd("COPY", "s", "z", "BOGUS") == "ERR syntax error"


def test_touch_randomkey_object_idletime(raw):
    """TOUCH counts existing keys; RANDOMKEY answers a live key or nil; OBJECT IDLETIME is the
    time since the last access, which TYPE/TTL/EXISTS do not reset but TOUCH does."""
    assert raw.cmd("RANDOMKEY") is None
    raw.cmd("SET", "a", 1)
    raw.cmd("SET", "b", 2)
    assert raw.cmd("TOUCH", "a", "b", "c") == 2
    assert raw.cmd("RANDOMKEY") in (b"a", b"b")
    assert raw.cmd("OBJECT", "IDLETIME", "a") == 0
    assert raw.cmd("OBJECT", "IDLETIME", "none") is None
    time.sleep(2.1)
    raw.cmd("TYPE", "a")
    raw.cmd("TTL", "a")
    raw.cmd("EXISTS", "a")
    assert raw.cmd("OBJECT", "IDLETIME", "a") >= 2
    raw.cmd("TOUCH", "a")
    assert raw.cmd("OBJECT", "IDLETIME", "a") == 0
    assert raw.cmd("OBJECT", "FREQ", "a").startswith("ERR An LFU maxmemory policy is not selected")


def test_sort(raw):
    """SORT and SORT_RO: numeric and ALPHA order, DESC, LIMIT, BY and GET patterns (hash fields
    too), BY without '*' keeping the native order, STORE into a list, and Redis's errors."""
    raw.cmd("RPUSH", "l", 3, 1, 2, 10)
    raw.cmd("MSET", "w_1", "d", "w_2", "c", "w_3", "b", "w_10", "a")
    raw.cmd("HSET", "h_2", "f", "two")
    assert raw.cmd("SORT", "l") == [b"1", b"2", b"3", b"10"]
    assert raw.cmd("SORT", "l", "DESC", "LIMIT", 1, 2) == [b"3", b"2"]
    assert raw.cmd("SORT_RO", "l", "ALPHA") == [b"1", b"10", b"2", b"3"]
    assert raw.cmd("SORT", "l", "BY", "w_*", "ALPHA", "GET", "#", "GET", "h_*->f") == [
        b"10", None, b"3", None, b"2", b"two", b"1", None]
    assert raw.cmd("SORT", "l", "BY", "nosort", "DESC") == [b"10", b"2", b"1", b"3"]
    assert raw.cmd("SORT", "l", "STORE", "dst") == 4
    assert raw.cmd("LRANGE", "dst", 0, -1) == [b"1", b"2", b"3", b"10"]
    raw.cmd("SADD", "s", "b", "c", "a")
    assert raw.cmd("SORT", "s", "ALPHA") == [b"a", b"b", b"c"]
    raw.cmd("RPUSH", "bad", "x")
    assert raw.cmd("SORT", "bad") == "ERR One or more scores can't be converted into double"
    assert raw.cmd("SORT_RO", "l", "STORE", "x") == "ERR syntax error"
    assert raw.cmd("SORT", "l", "LIMIT", 1) == "ERR syntax error"
    assert raw.cmd("SORT", "w_1") == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert raw.cmd("SORT", "none", "STORE", "dst") == 0
    assert raw.cmd("EXISTS", "dst") == 0

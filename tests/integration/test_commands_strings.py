"""String commands: replies and exact error texts as Redis 7.0 gives them."""

import time

import pytest

NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def test_get_set_basic(r):
    """SET stores a value GET returns; GET of a missing key is nil."""
    assert r.get("missing") is None
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.set("k", "v2") is True
    assert r.get("k") == "v2"


def test_binary_safe_values(rb):
    """Values and keys are binary safe: NUL, CR/LF and high bytes round-trip exactly."""
    val = bytes(range(256)) * 4 + b"\r\n\x00end"
    key = b"k\x00\r\n\xff"
    assert rb.set(key, val) is True
    assert rb.get(key) == val
    assert rb.strlen(key) == len(val)
    assert rb.set(b"empty", b"") is True
    assert rb.get(b"empty") == b""
    assert rb.exists(b"empty") == 1


def test_large_value_roundtrip(rb):
    """A 2 MiB value survives SET/GET/APPEND intact."""
    val = bytes((i * 7) & 0xFF for i in range(2 * 1024 * 1024))
    assert rb.set(b"big", val) is True
    assert rb.get(b"big") == val
    assert rb.append(b"big", b"xyz") == len(val) + 3
    assert rb.getrange(b"big", -3, -1) == b"xyz"


def test_arity_errors(raw):
    """Wrong argument counts answer Redis's exact arity error naming the command."""
    for args, name in [
        (("GET",), "get"),
        (("GET", "a", "b"), "get"),
        (("SET", "a"), "set"),
        (("SETNX", "a"), "setnx"),
        (("SETEX", "a", "10"), "setex"),
        (("PSETEX", "a", "10"), "psetex"),
        (("GETSET", "a"), "getset"),
        (("GETDEL",), "getdel"),
        (("GETEX",), "getex"),
        (("MGET",), "mget"),
        (("MSET", "a"), "mset"),
        (("MSET", "a", "1", "b"), "mset"),
        (("MSETNX", "a", "1", "b"), "msetnx"),
        (("APPEND", "a"), "append"),
        (("STRLEN",), "strlen"),
        (("GETRANGE", "a", "0"), "getrange"),
        (("SETRANGE", "a", "0"), "setrange"),
        (("INCR",), "incr"),
        (("DECR", "a", "b"), "decr"),
        (("INCRBY", "a"), "incrby"),
        (("DECRBY", "a"), "decrby"),
        (("INCRBYFLOAT", "a"), "incrbyfloat"),
    ]:
        assert raw.cmd(*args) == arity(name), args


def test_command_names_case_insensitive(raw):
    """Command names match case-insensitively; arity errors name the command in lower case."""
    assert raw.cmd("sEt", "k", "v") == "OK"
    assert raw.cmd("get", "k") == b"v"
    assert raw.cmd("GeT") == arity("get")


def test_set_nx_xx(r):
    """SET NX only creates, SET XX only overwrites; a refused SET replies nil."""
    assert r.set("k", "1", xx=True) is None
    assert r.get("k") is None
    assert r.set("k", "1", nx=True) is True
    assert r.set("k", "2", nx=True) is None
    assert r.get("k") == "1"
    assert r.set("k", "3", xx=True) is True
    assert r.get("k") == "3"


def test_set_get_option(raw):
    """SET ... GET returns the old value (nil when absent) and still writes."""
    assert raw.cmd("SET", "k", "new", "GET") is None
    assert raw.cmd("GET", "k") == b"new"
    assert raw.cmd("SET", "k", "newer", "GET") == b"new"
    assert raw.cmd("GET", "k") == b"newer"
    # NX + GET: refused write still returns the old value.
    assert raw.cmd("SET", "k", "x", "NX", "GET") == b"newer"
    assert raw.cmd("GET", "k") == b"newer"
    assert raw.cmd("HSET", "h", "f", "v") == 1
    assert raw.cmd("SET", "h", "v", "GET") == WRONGTYPE
    assert raw.cmd("TYPE", "h") == "hash"


def test_set_expire_options(raw):
    """SET EX/PX/EXAT/PXAT set the TTL; KEEPTTL keeps it; a plain SET clears it."""
    assert raw.cmd("SET", "k", "v", "EX", "100") == "OK"
    assert 95 <= raw.cmd("TTL", "k") <= 100
    assert raw.cmd("SET", "k", "v", "PX", "100000") == "OK"
    assert 95000 <= raw.cmd("PTTL", "k") <= 100000
    at = int(time.time()) + 1000
    assert raw.cmd("SET", "k", "v", "EXAT", str(at)) == "OK"
    assert raw.cmd("EXPIRETIME", "k") == at
    pat = int(time.time() * 1000) + 500000
    assert raw.cmd("SET", "k", "v", "PXAT", str(pat)) == "OK"
    assert raw.cmd("PEXPIRETIME", "k") == pat
    assert raw.cmd("SET", "k", "v2", "KEEPTTL") == "OK"
    assert raw.cmd("PEXPIRETIME", "k") == pat
    assert raw.cmd("GET", "k") == b"v2"
    assert raw.cmd("SET", "k", "v3") == "OK"
    assert raw.cmd("TTL", "k") == -1


def test_set_option_errors(raw):
    """Conflicting or malformed SET options are syntax errors; bad times are exact errors."""
    for args in [
        ("SET", "k", "v", "NX", "XX"),
        ("SET", "k", "v", "EX", "10", "PX", "100"),
        ("SET", "k", "v", "EX", "10", "KEEPTTL"),
        ("SET", "k", "v", "KEEPTTL", "PXAT", "100"),
        ("SET", "k", "v", "EX"),
        ("SET", "k", "v", "BOGUS"),
        ("SET", "k", "v", "EX", "10", "EXAT", "10"),
    ]:
        assert raw.cmd(*args) == SYNTAX, args
    assert raw.cmd("SET", "k", "v", "EX", "abc") == NOT_INT
    assert raw.cmd("SET", "k", "v", "EX", "1.5") == NOT_INT
    for args, name in [
        (("SET", "k", "v", "EX", "0"), "set"),
        (("SET", "k", "v", "EX", "-1"), "set"),
        (("SET", "k", "v", "PX", "0"), "set"),
        (("SET", "k", "v", "EXAT", "0"), "set"),
        (("SET", "k", "v", "EX", "9223372036854775807"), "set"),
        (("SET", "k", "v", "PX", "9223372036854775807"), "set"),
    ]:
        assert raw.cmd(*args) == "ERR invalid expire time in '%s' command" % name, args
    assert raw.cmd("EXISTS", "k") == 0


def test_set_option_case_insensitive(raw):
    """SET options are matched case-insensitively."""
    assert raw.cmd("SET", "k", "v", "nx", "ex", "100") == "OK"
    assert 0 < raw.cmd("TTL", "k") <= 100
    assert raw.cmd("SET", "k", "w", "Xx", "get") == b"v"


def test_setnx_setex_psetex(raw):
    """SETNX returns 1/0; SETEX/PSETEX set value and TTL; invalid TTLs are exact errors."""
    assert raw.cmd("SETNX", "k", "1") == 1
    assert raw.cmd("SETNX", "k", "2") == 0
    assert raw.cmd("GET", "k") == b"1"
    assert raw.cmd("SETEX", "k", "100", "v") == "OK"
    assert 95 <= raw.cmd("TTL", "k") <= 100
    assert raw.cmd("GET", "k") == b"v"
    assert raw.cmd("PSETEX", "p", "100000", "v") == "OK"
    assert 95000 <= raw.cmd("PTTL", "p") <= 100000
    assert raw.cmd("SETEX", "k", "0", "v") == "ERR invalid expire time in 'setex' command"
    assert raw.cmd("SETEX", "k", "-5", "v") == "ERR invalid expire time in 'setex' command"
    assert raw.cmd("PSETEX", "k", "0", "v") == "ERR invalid expire time in 'psetex' command"
    assert raw.cmd("SETEX", "k", "x", "v") == NOT_INT


def test_getset_getdel(raw):
    """GETSET swaps and clears the TTL; GETDEL returns and removes; both reject hashes."""
    assert raw.cmd("GETSET", "k", "1") is None
    assert raw.cmd("SET", "k", "2", "EX", "100") == "OK"
    assert raw.cmd("GETSET", "k", "3") == b"2"
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("GETDEL", "k") == b"3"
    assert raw.cmd("EXISTS", "k") == 0
    assert raw.cmd("GETDEL", "k") is None
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("GETSET", "h", "x") == WRONGTYPE
    assert raw.cmd("GETDEL", "h") == WRONGTYPE
    assert raw.cmd("EXISTS", "h") == 1


def test_getex(raw):
    """GETEX reads and optionally changes the TTL (EX/PX/EXAT/PXAT/PERSIST)."""
    assert raw.cmd("GETEX", "missing") is None
    assert raw.cmd("SET", "k", "v") == "OK"
    assert raw.cmd("GETEX", "k") == b"v"
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("GETEX", "k", "EX", "100") == b"v"
    assert 95 <= raw.cmd("TTL", "k") <= 100
    assert raw.cmd("GETEX", "k", "PX", "200000") == b"v"
    assert 195000 <= raw.cmd("PTTL", "k") <= 200000
    at = int(time.time()) + 5000
    assert raw.cmd("GETEX", "k", "EXAT", str(at)) == b"v"
    assert raw.cmd("EXPIRETIME", "k") == at
    assert raw.cmd("GETEX", "k", "PERSIST") == b"v"
    assert raw.cmd("TTL", "k") == -1
    assert raw.cmd("GETEX", "k", "EX", "10", "PX", "10") == SYNTAX
    assert raw.cmd("GETEX", "k", "PERSIST", "EX", "10") == SYNTAX
    assert raw.cmd("GETEX", "k", "BOGUS") == SYNTAX
    assert raw.cmd("GETEX", "k", "EX", "0") == "ERR invalid expire time in 'getex' command"
    assert raw.cmd("GETEX", "k", "EX", "nope") == NOT_INT
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("GETEX", "h") == WRONGTYPE


def test_mget_mset_msetnx(raw):
    """MSET writes all pairs, MGET returns nil for missing or non-string keys, MSETNX is all-or-nothing."""
    assert raw.cmd("MSET", "a", "1", "b", "2", "a", "3") == "OK"
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("MGET", "a", "b", "nope", "h") == [b"3", b"2", None, None]
    assert raw.cmd("MSETNX", "c", "1", "a", "9") == 0
    assert raw.cmd("EXISTS", "c") == 0
    assert raw.cmd("GET", "a") == b"3"
    assert raw.cmd("MSETNX", "c", "1", "d", "2") == 1
    assert raw.cmd("MGET", "c", "d") == [b"1", b"2"]
    assert raw.cmd("MSET", "a", "1", "b") == arity("mset")


def test_mset_overwrites_type_and_ttl(raw):
    """MSET overwrites a hash and clears an existing TTL."""
    raw.cmd("HSET", "h", "f", "v")
    raw.cmd("SET", "t", "v", "EX", "100")
    assert raw.cmd("MSET", "h", "s", "t", "u") == "OK"
    assert raw.cmd("TYPE", "h") == "string"
    assert raw.cmd("TTL", "t") == -1


def test_append_strlen(raw):
    """APPEND creates or extends and returns the new length; STRLEN is 0 for missing keys."""
    assert raw.cmd("STRLEN", "k") == 0
    assert raw.cmd("APPEND", "k", "hello") == 5
    assert raw.cmd("APPEND", "k", " world") == 11
    assert raw.cmd("GET", "k") == b"hello world"
    assert raw.cmd("STRLEN", "k") == 11
    assert raw.cmd("APPEND", "k", "") == 11
    raw.cmd("SET", "n", "10")
    assert raw.cmd("APPEND", "n", "5") == 3
    assert raw.cmd("INCR", "n") == 106
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("APPEND", "h", "x") == WRONGTYPE
    assert raw.cmd("STRLEN", "h") == WRONGTYPE


def test_getrange(raw):
    """GETRANGE clamps indexes like Redis: negatives count from the end, empty when out of range."""
    raw.cmd("SET", "k", "This is a string")
    assert raw.cmd("GETRANGE", "k", "0", "3") == b"This"
    assert raw.cmd("GETRANGE", "k", "-3", "-1") == b"ing"
    assert raw.cmd("GETRANGE", "k", "0", "-1") == b"This is a string"
    assert raw.cmd("GETRANGE", "k", "10", "100") == b"string"
    assert raw.cmd("GETRANGE", "k", "5", "3") == b""
    assert raw.cmd("GETRANGE", "k", "100", "200") == b""
    assert raw.cmd("GETRANGE", "k", "-100", "2") == b"Thi"
    assert raw.cmd("GETRANGE", "missing", "0", "-1") == b""
    assert raw.cmd("GETRANGE", "k", "a", "1") == NOT_INT
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("GETRANGE", "h", "0", "1") == WRONGTYPE


def test_setrange(raw):
    """SETRANGE overwrites at an offset, pads with zero bytes, and validates the offset."""
    raw.cmd("SET", "k", "Hello World")
    assert raw.cmd("SETRANGE", "k", "6", "Redis") == 11
    assert raw.cmd("GET", "k") == b"Hello Redis"
    assert raw.cmd("SETRANGE", "pad", "5", "ab") == 7
    assert raw.cmd("GET", "pad") == b"\x00\x00\x00\x00\x00ab"
    # An empty value on a missing key creates nothing.
    assert raw.cmd("SETRANGE", "none", "10", "") == 0
    assert raw.cmd("EXISTS", "none") == 0
    assert raw.cmd("SETRANGE", "k", "-1", "x") == "ERR offset is out of range"
    assert raw.cmd("SETRANGE", "k", "x", "x") == NOT_INT
    assert raw.cmd("SETRANGE", "k", "536870912", "x") == "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("SETRANGE", "h", "0", "x") == WRONGTYPE


def test_incr_decr(raw):
    """INCR/DECR/INCRBY/DECRBY on missing, valid and invalid values, with exact errors."""
    assert raw.cmd("INCR", "n") == 1
    assert raw.cmd("INCRBY", "n", "10") == 11
    assert raw.cmd("DECR", "n") == 10
    assert raw.cmd("DECRBY", "n", "15") == -5
    assert raw.cmd("INCRBY", "n", "-5") == -10
    assert raw.cmd("GET", "n") == b"-10"
    assert raw.cmd("DECR", "m") == -1
    raw.cmd("SET", "s", "abc")
    assert raw.cmd("INCR", "s") == NOT_INT
    raw.cmd("SET", "s", " 1")
    assert raw.cmd("INCR", "s") == NOT_INT
    raw.cmd("SET", "s", "01")
    assert raw.cmd("INCR", "s") == NOT_INT
    raw.cmd("SET", "s", "1.5")
    assert raw.cmd("INCR", "s") == NOT_INT
    raw.cmd("SET", "s", "")
    assert raw.cmd("INCR", "s") == NOT_INT
    assert raw.cmd("INCRBY", "n", "abc") == NOT_INT
    assert raw.cmd("INCRBY", "n", "99999999999999999999") == NOT_INT
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("INCR", "h") == WRONGTYPE


def test_incr_keeps_ttl(raw):
    """INCR changes the value but keeps an existing TTL."""
    raw.cmd("SET", "n", "5", "EX", "100")
    assert raw.cmd("INCR", "n") == 6
    assert 95 <= raw.cmd("TTL", "n") <= 100


def test_incr_overflow(raw):
    """Increments past the 64-bit range are refused with Redis's overflow errors."""
    raw.cmd("SET", "n", "9223372036854775807")
    assert raw.cmd("INCR", "n") == "ERR increment or decrement would overflow"
    assert raw.cmd("INCRBY", "n", "1") == "ERR increment or decrement would overflow"
    assert raw.cmd("GET", "n") == b"9223372036854775807"
    raw.cmd("SET", "n", "-9223372036854775808")
    assert raw.cmd("DECR", "n") == "ERR increment or decrement would overflow"
    raw.cmd("SET", "z", "0")
    assert raw.cmd("DECRBY", "z", "-9223372036854775808") == "ERR decrement would overflow"
    assert raw.cmd("INCRBY", "z", "-9223372036854775808") == -9223372036854775808


def test_incrbyfloat(raw):
    """INCRBYFLOAT formats like Redis (no trailing zeros, no exponent) and validates input."""
    assert raw.cmd("INCRBYFLOAT", "f", "10.5") == b"10.5"
    assert raw.cmd("INCRBYFLOAT", "f", "0.1") == b"10.6"
    assert raw.cmd("INCRBYFLOAT", "f", "-5") == b"5.6"
    assert raw.cmd("INCRBYFLOAT", "e", "5.0e3") == b"5000"
    assert raw.cmd("INCRBYFLOAT", "e", "0.25") == b"5000.25"
    raw.cmd("SET", "g", "3")
    assert raw.cmd("INCRBYFLOAT", "g", "1.5") == b"4.5"
    assert raw.cmd("INCRBYFLOAT", "g", "-4.5") == b"0"
    assert raw.cmd("GET", "g") == b"0"
    assert raw.cmd("INCRBYFLOAT", "f", "abc") == NOT_FLOAT
    raw.cmd("SET", "s", "abc")
    assert raw.cmd("INCRBYFLOAT", "s", "1") == NOT_FLOAT
    assert raw.cmd("INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
    assert raw.cmd("INCRBYFLOAT", "f", "-inf") == "ERR increment would produce NaN or Infinity"
    assert raw.cmd("GET", "f") == b"5.6"
    assert raw.cmd("INCRBYFLOAT", "f", "nan") == NOT_FLOAT
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("INCRBYFLOAT", "h", "1") == WRONGTYPE


def test_wrongtype_reads(raw):
    """String reads of a hash key answer WRONGTYPE and leave it intact."""
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("GET", "h") == WRONGTYPE
    assert raw.cmd("GETRANGE", "h", "0", "-1") == WRONGTYPE
    assert raw.cmd("HGET", "h", "f") == b"v"


def test_set_replaces_hash(raw):
    """A plain SET replaces a key of another type."""
    raw.cmd("HSET", "h", "f", "v")
    assert raw.cmd("SET", "h", "s") == "OK"
    assert raw.cmd("TYPE", "h") == "string"
    assert raw.cmd("GET", "h") == b"s"


def test_redis_cli_set_get(srv):
    """redis-cli works against the server: SET prints OK and GET prints the value."""
    import subprocess

    out = subprocess.run(["redis-cli", "-p", str(srv.port), "SET", "a", "b"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out
    out = subprocess.run(["redis-cli", "-p", str(srv.port), "GET", "a"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "b", out
    out = subprocess.run(["redis-cli", "-p", str(srv.port), "INCR", "a"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "ERR value is not an integer or out of range", out
    out = subprocess.run(["redis-cli", "-p", str(srv.port), "GET", "nope"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "", out  # non-tty redis-cli prints an empty line for nil


def test_redis_py_types(r):
    """python3-redis sees the expected Python types for integer, string and nil replies."""
    assert r.incr("c") == 1
    assert r.mset({"x": "1", "y": "2"}) is True
    assert r.mget(["x", "y", "z"]) == ["1", "2", None]
    assert r.getdel("x") == "1"
    assert r.incrbyfloat("fl", 1.25) == pytest.approx(1.25)
    assert isinstance(r.strlen("y"), int)
    with pytest.raises(Exception) as e:
        r.incr("fl")
    assert "not an integer" in str(e.value)


def test_set_with_past_absolute_time_deletes(raw):
    """SET ... EXAT/PXAT in the past replies OK and leaves no key; GETEX EXAT in the past deletes."""
    assert raw.cmd("SET", "k", "v", "EXAT", "1") == "OK"
    assert raw.cmd("EXISTS", "k") == 0
    assert raw.cmd("SET", "k", "v", "PXAT", "1000") == "OK"
    assert raw.cmd("GET", "k") is None
    raw.cmd("SET", "k", "v")
    assert raw.cmd("GETEX", "k", "EXAT", "1") == b"v"
    assert raw.cmd("EXISTS", "k") == 0


def test_msetnx_duplicate_keys(raw):
    """MSETNX with the same key twice succeeds and the last value wins."""
    assert raw.cmd("MSETNX", "a", "1", "a", "2") == 1
    assert raw.cmd("GET", "a") == b"2"


def test_getrange_extreme_indexes(raw):
    """GETRANGE with 64-bit extreme indexes clamps instead of overflowing."""
    raw.cmd("SET", "k", "hello")
    assert raw.cmd("GETRANGE", "k", "0", "9223372036854775807") == b"hello"
    assert raw.cmd("GETRANGE", "k", "-9223372036854775808", "-1") == b"hello"
    assert raw.cmd("GETRANGE", "k", "-9223372036854775808", "9223372036854775807") == b"hello"


def test_setrange_empty_value_at_max_offset(raw):
    """SETRANGE with an empty value on a missing key creates nothing, even at the largest offset."""
    assert raw.cmd("SETRANGE", "k", "536870911", "") == 0
    assert raw.cmd("EXISTS", "k") == 0


def test_empty_and_large_keys(rb):
    """An empty key name and a 100 KiB key name are ordinary keys."""
    assert rb.set(b"", b"empty-key") is True
    assert rb.get(b"") == b"empty-key"
    big = b"K" * (100 * 1024)
    assert rb.set(big, b"v") is True
    assert rb.get(big) == b"v"
    assert rb.exists(big, b"") == 2
    assert rb.delete(big) == 1


def test_many_keys_in_one_command(raw):
    """MSET/MGET/DEL/EXISTS with 5,000 keys in one command work."""
    keys = ["many:%d" % i for i in range(5000)]
    assert raw.cmd("MSET", *[x for k in keys for x in (k, k)]) == "OK"
    assert raw.cmd("MGET", *keys) == [k.encode() for k in keys]
    assert raw.cmd("EXISTS", *keys) == 5000
    assert raw.cmd("DEL", *keys) == 5000
    assert raw.cmd("DBSIZE") == 0

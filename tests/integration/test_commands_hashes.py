"""Hash commands (the grid's named maps): replies and exact error texts as Redis 7.0 gives them."""

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "ERR value is not an integer or out of range"


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def pairs(flat):
    return dict(zip(flat[::2], flat[1::2]))


def test_hset_hget(raw):
    """HSET returns the number of new fields, updates existing ones; HGET reads them."""
    assert raw.cmd("HSET", "h", "a", "1", "b", "2") == 2
    assert raw.cmd("HSET", "h", "a", "10", "c", "3") == 1
    assert raw.cmd("HGET", "h", "a") == b"10"
    assert raw.cmd("HGET", "h", "nope") is None
    assert raw.cmd("HGET", "nokey", "a") is None
    assert raw.cmd("HLEN", "h") == 3
    assert raw.cmd("HSET", "h", "a") == arity("hset")
    assert raw.cmd("HSET", "h", "a", "1", "b") == arity("hset")
    assert raw.cmd("HGET", "h") == arity("hget")


def test_hmset_hmget(raw):
    """HMSET replies OK; HMGET returns values in order with nil for missing fields or keys."""
    assert raw.cmd("HMSET", "h", "a", "1", "b", "2") == "OK"
    assert raw.cmd("HMGET", "h", "b", "x", "a") == [b"2", None, b"1"]
    assert raw.cmd("HMGET", "nokey", "a", "b") == [None, None]
    assert raw.cmd("HMSET", "h", "a") == arity("hmset")
    assert raw.cmd("HMGET", "h") == arity("hmget")


def test_hdel_removes_empty_hash(raw):
    """HDEL counts removed fields; deleting the last field deletes the key."""
    raw.cmd("HSET", "h", "a", "1", "b", "2")
    assert raw.cmd("HDEL", "h", "a", "x", "a") == 1
    assert raw.cmd("HDEL", "h", "b") == 1
    assert raw.cmd("EXISTS", "h") == 0
    assert raw.cmd("TYPE", "h") == "none"
    assert raw.cmd("HDEL", "h", "b") == 0
    assert raw.cmd("HDEL", "h") == arity("hdel")


def test_hexists_hlen_hstrlen(raw):
    """HEXISTS, HLEN and HSTRLEN report presence, field count and value length (0 when missing)."""
    raw.cmd("HSET", "h", "a", "hello", "b", "")
    assert raw.cmd("HEXISTS", "h", "a") == 1
    assert raw.cmd("HEXISTS", "h", "z") == 0
    assert raw.cmd("HEXISTS", "nokey", "a") == 0
    assert raw.cmd("HLEN", "h") == 2
    assert raw.cmd("HLEN", "nokey") == 0
    assert raw.cmd("HSTRLEN", "h", "a") == 5
    assert raw.cmd("HSTRLEN", "h", "b") == 0
    assert raw.cmd("HSTRLEN", "h", "z") == 0
    assert raw.cmd("HSTRLEN", "nokey", "z") == 0


def test_hgetall_hkeys_hvals(raw):
    """HGETALL/HKEYS/HVALS return all fields and values, consistently ordered; empty for missing keys."""
    fields = {b"f%d" % i: b"v%d" % i for i in range(300)}  # large enough to leave any compact encoding
    args = [x for kv in fields.items() for x in kv]
    assert raw.cmd("HSET", "h", *args) == 300
    flat = raw.cmd("HGETALL", "h")
    assert len(flat) == 600
    assert pairs(flat) == fields
    ks = raw.cmd("HKEYS", "h")
    vs = raw.cmd("HVALS", "h")
    assert dict(zip(ks, vs)) == fields
    assert raw.cmd("HGETALL", "nokey") == []
    assert raw.cmd("HKEYS", "nokey") == []
    assert raw.cmd("HVALS", "nokey") == []


def test_hincrby(raw):
    """HINCRBY creates, increments and validates with Redis's exact errors."""
    assert raw.cmd("HINCRBY", "h", "n", "5") == 5
    assert raw.cmd("HINCRBY", "h", "n", "-7") == -2
    assert raw.cmd("HGET", "h", "n") == b"-2"
    raw.cmd("HSET", "h", "s", "abc")
    assert raw.cmd("HINCRBY", "h", "s", "1") == "ERR hash value is not an integer"
    assert raw.cmd("HINCRBY", "h", "n", "x") == NOT_INT
    raw.cmd("HSET", "h", "big", "9223372036854775807")
    assert raw.cmd("HINCRBY", "h", "big", "1") == "ERR increment or decrement would overflow"
    assert raw.cmd("HGET", "h", "big") == b"9223372036854775807"
    assert raw.cmd("HINCRBY", "h", "n") == arity("hincrby")


def test_hincrbyfloat(raw):
    """HINCRBYFLOAT formats like INCRBYFLOAT and validates with exact errors."""
    assert raw.cmd("HINCRBYFLOAT", "h", "f", "10.5") == b"10.5"
    assert raw.cmd("HINCRBYFLOAT", "h", "f", "0.1") == b"10.6"
    assert raw.cmd("HINCRBYFLOAT", "h", "f", "-10.6") == b"0"
    assert raw.cmd("HINCRBYFLOAT", "h", "e", "5.0e3") == b"5000"
    raw.cmd("HSET", "h", "s", "abc")
    assert raw.cmd("HINCRBYFLOAT", "h", "s", "1") == "ERR hash value is not a float"
    assert raw.cmd("HINCRBYFLOAT", "h", "f", "x") == "ERR value is not a valid float"
    assert raw.cmd("HINCRBYFLOAT", "h", "f", "inf") == "ERR value is NaN or Infinity"


def test_hsetnx(raw):
    """HSETNX sets a field only if it is absent."""
    assert raw.cmd("HSETNX", "h", "a", "1") == 1
    assert raw.cmd("HSETNX", "h", "a", "2") == 0
    assert raw.cmd("HGET", "h", "a") == b"1"
    assert raw.cmd("HSETNX", "h", "a") == arity("hsetnx")


def test_hash_wrongtype(raw):
    """Every hash command on a string key answers WRONGTYPE."""
    raw.cmd("SET", "s", "v")
    for args in [
        ("HSET", "s", "f", "v"), ("HGET", "s", "f"), ("HMGET", "s", "f"), ("HMSET", "s", "f", "v"),
        ("HDEL", "s", "f"), ("HEXISTS", "s", "f"), ("HLEN", "s"), ("HSTRLEN", "s", "f"),
        ("HGETALL", "s"), ("HKEYS", "s"), ("HVALS", "s"), ("HINCRBY", "s", "f", "1"),
        ("HINCRBYFLOAT", "s", "f", "1"), ("HSETNX", "s", "f", "v"), ("HRANDFIELD", "s"),
        ("HSCAN", "s", "0"),
    ]:
        assert raw.cmd(*args) == WRONGTYPE, args
    assert raw.cmd("GET", "s") == b"v"


def test_hrandfield(raw):
    """HRANDFIELD: single field, distinct fields for positive counts, repeats for negative, WITHVALUES."""
    fields = {b"f%d" % i: b"v%d" % i for i in range(10)}
    raw.cmd("HSET", "h", *[x for kv in fields.items() for x in kv])
    assert raw.cmd("HRANDFIELD", "h") in fields
    got = raw.cmd("HRANDFIELD", "h", "5")
    assert len(got) == 5 and len(set(got)) == 5 and set(got) <= set(fields)
    got = raw.cmd("HRANDFIELD", "h", "100")
    assert sorted(got) == sorted(fields)
    got = raw.cmd("HRANDFIELD", "h", "-30")
    assert len(got) == 30 and set(got) <= set(fields)
    got = raw.cmd("HRANDFIELD", "h", "3", "WITHVALUES")
    assert len(got) == 6
    for f, v in pairs(got).items():
        assert fields[f] == v
    got = raw.cmd("HRANDFIELD", "h", "-4", "WITHVALUES")
    assert len(got) == 8
    assert raw.cmd("HRANDFIELD", "h", "0") == []
    assert raw.cmd("HRANDFIELD", "nokey") is None
    assert raw.cmd("HRANDFIELD", "nokey", "3") == []
    assert raw.cmd("HRANDFIELD", "h", "x") == NOT_INT
    assert raw.cmd("HRANDFIELD", "h", "3", "BOGUS") == "ERR syntax error"


def hscan_all(raw, key, *opts):
    cursor = b"0"
    out = []
    for _ in range(100000):
        cursor, items = raw.cmd("HSCAN", key, cursor, *opts)
        out.extend(items)
        if cursor == b"0":
            return out
    raise AssertionError("HSCAN did not terminate")


def test_hscan(raw):
    """HSCAN returns every field/value pair, filters with MATCH, honours COUNT and ends at cursor 0."""
    fields = {b"f%d" % i: b"v%d" % i for i in range(500)}
    raw.cmd("HSET", "h", *[x for kv in fields.items() for x in kv])
    assert pairs(hscan_all(raw, "h")) == fields
    assert pairs(hscan_all(raw, "h", "COUNT", "3")) == fields
    matched = pairs(hscan_all(raw, "h", "MATCH", "f1?"))
    assert matched == {b"f1%d" % i: b"v1%d" % i for i in range(10)}
    assert raw.cmd("HSCAN", "nokey", "0") == [b"0", []]
    assert raw.cmd("HSCAN", "h", "abc") == "ERR invalid cursor"
    assert raw.cmd("HSCAN", "h", "0", "COUNT", "0") == "ERR syntax error"
    assert raw.cmd("HSCAN", "h") == arity("hscan")


def test_hash_binary_fields(rb):
    """Hash fields and values are binary safe."""
    f = b"\x00f\r\n"
    v = bytes(range(256))
    assert rb.hset(b"h", f, v) == 1
    assert rb.hget(b"h", f) == v
    assert rb.hgetall(b"h") == {f: v}


def test_redis_py_hash_helpers(r):
    """python3-redis hash helpers map replies to dicts, lists and ints as expected."""
    assert r.hset("user:1", mapping={"name": "ann", "age": "30"}) == 2
    assert r.hgetall("user:1") == {"name": "ann", "age": "30"}
    assert r.hincrby("user:1", "age", 1) == 31
    assert sorted(r.hkeys("user:1")) == ["age", "name"]
    assert dict(r.hscan_iter("user:1")) == {"name": "ann", "age": "31"}
    assert r.hdel("user:1", "name", "age") == 2
    assert r.exists("user:1") == 0

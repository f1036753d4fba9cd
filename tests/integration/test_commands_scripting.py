"""Lua scripting and functions (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL,
FCALL_RO): replies, conversions and error texts as Redis 7.0 gives them; the sandbox; the
step and memory bounds; and scripts replicated as one log entry each: through a follower of a
3-node cluster, with partitions (-CROSSSLOT, a key of another partition, SCRIPT LOAD reaching
every partition) and in redirect moved mode, every replica ends with the same values."""

import hashlib
import json
import signal
import subprocess
import time
import urllib.request

import pytest
import redis

from cluster import Cluster, info
from conftest import RawConn, Server, info_dict, wait_for

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


def sha1(body):
    return hashlib.sha1(body.encode()).hexdigest()


# ---- one node ---------------------------------------------------------------------------------


def test_lua_to_resp_conversions(raw):
    """Lua values become the replies Redis documents: numbers truncate to integers, true is 1,
    false and nil are nil, tables are arrays up to the first nil, {ok=} and {err=} are status
    and error replies."""
    assert raw.cmd("EVAL", "return 100.5", 0) == 100
    assert raw.cmd("EVAL", "return 'hello'", 0) == b"hello"
    assert raw.cmd("EVAL", "return true", 0) == 1
    assert raw.cmd("EVAL", "return false", 0) is None
    assert raw.cmd("EVAL", "return nil", 0) is None
    assert raw.cmd("EVAL", "return {1,2,3,'ciao',{1,2}}", 0) == [1, 2, 3, b"ciao", [1, 2]]
    assert raw.cmd("EVAL", "return {1,2,nil,4}", 0) == [1, 2]
    assert raw.cmd("EVAL", "return {ok='FINE'}", 0) == "FINE"
    assert raw.cmd("EVAL", "return redis.status_reply('FINE')", 0) == "FINE"
    assert raw.cmd("EVAL", "return {err='My Error'}", 0) == "My Error"
    assert raw.cmd("EVAL", "return redis.error_reply('My Error')", 0) == "My Error"
    assert raw.cmd("EVAL", "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}", 2, "a", "b", "c",
                   "d") == [b"a", b"b", b"c", b"d"]


def test_resp_to_lua_conversions(raw):
    """Replies become Lua values: integers are numbers, bulk strings strings, a missing value
    false, status replies {ok=}, errors {err=} (redis.pcall), arrays tables."""
    raw.cmd("DEL", "s", "l")
    raw.cmd("SET", "s", "val")
    raw.cmd("RPUSH", "l", "a", "b")
    assert raw.cmd("EVAL", "return type(redis.call('get', 'nokey'))", 0) == b"boolean"
    assert raw.cmd("EVAL", "return redis.call('get', 'nokey') == false", 0) == 1
    assert raw.cmd("EVAL", "return redis.call('set', 'x', '1')['ok']", 0) == b"OK"
    assert raw.cmd("EVAL", "return redis.call('strlen', 's') + 1", 0) == 4
    assert raw.cmd("EVAL", "return redis.call('lrange', 'l', 0, -1)", 0) == [b"a", b"b"]
    assert raw.cmd("EVAL", "return redis.pcall('incr', 's')['err']", 0) == \
        b"ERR value is not an integer or out of range"
    # Numbers given to redis.call are formatted as Redis does.
    assert raw.cmd("EVAL", "redis.call('set', 'n', 3) return redis.call('get', 'n')", 0) == b"3"
    assert raw.cmd("EVAL", "redis.call('set', 'n', 1.5) return redis.call('get', 'n')",
                   0) == b"1.5"


def test_resp3_conversions(srv):
    """With redis.setresp(3) replies keep RESP3 types (a map is {map=}, a double {double=}),
    and a RESP3 client gets true/false as booleans."""
    with RawConn(srv.port) as c:
        c.cmd("HELLO", 3)
        c.cmd("DEL", "h")
        c.cmd("HSET", "h", "f", "v")
        assert c.cmd("EVAL", "redis.setresp(3) return redis.call('hgetall', 'h')['map']['f']",
                     0) == b"v"
        assert c.cmd("EVAL", "return true", 0) is True
        assert c.cmd("EVAL", "return {double=3.5}", 0) == 3.5
        assert c.cmd("EVAL", "redis.setresp(4)", 0).startswith("ERR")


def test_eval_argument_errors(raw):
    """numkeys is checked as Redis checks it; a script that does not compile is refused."""
    assert raw.cmd("EVAL", "return 1", "x") == "ERR value is not an integer or out of range"
    assert raw.cmd("EVAL", "return 1", -1) == "ERR Number of keys can't be negative"
    assert raw.cmd("EVAL", "return 1", 3, "a") == \
        "ERR Number of keys can't be greater than number of args"
    err = raw.cmd("EVAL", "this is not lua", 0)
    assert err.startswith("ERR Error compiling script (new function): user_script:1:")
    assert raw.cmd("EVAL") == "ERR wrong number of arguments for 'eval' command"


def test_runtime_errors_name_the_script(raw):
    """A script's error reply names the script's SHA-1 and its line; redis.call of an unknown
    command, with a bad argument type, or of a refused command fails."""
    body = "local a = 1\nreturn redis.call('nosuchcommand')"
    err = raw.cmd("EVAL", body, 0)
    assert err.startswith("ERR Unknown Redis command called from script")
    assert err.endswith("script: %s, on @user_script:2." % sha1(body))
    assert "must be strings or integers" in raw.cmd("EVAL", "return redis.call('get', {})", 0)
    for cmd in ("'multi'", "'eval', 'return 1', 0", "'subscribe', 'c'", "'config', 'get', 'x'",
                "'blpop', 'l', 0"):
        assert "not allowed from script" in raw.cmd("EVAL", "return redis.call(%s)" % cmd, 0), cmd
    assert "(a nil value)" in raw.cmd("EVAL", "local f return f()", 0)


def test_sandbox(raw):
    """Globals cannot be created or replaced, library tables are read-only, there is no
    loadfile, dofile, print, io or os, and loadstring refuses bytecode."""
    assert "Script attempted to access nonexistent global variable 'a'" in \
        raw.cmd("EVAL", "return a", 0)
    for body in ("a = 10", "redis = 1", "_G = {}", "setmetatable(_G, {})",
                 "getmetatable(_G).__index = {}", "redis.call = function() end",
                 "cjson.encode = 1", "bit.band = 1", "cmsgpack.pack = 1", "struct.size = 1",
                 "string.len = 1", "rawset(_G, 'x', 1)"):
        assert "Attempt to modify a readonly table" in raw.cmd("EVAL", body, 0), body
    for name in ("loadfile", "dofile", "print", "io", "os", "require"):
        assert "nonexistent global variable '%s'" % name in \
            raw.cmd("EVAL", "return %s" % name, 0), name
    assert "attempt to call a nil value" in \
        raw.cmd("EVAL", "return loadstring(string.dump(function() return 1 end))()", 0)
    assert raw.cmd("EVAL", "local f = loadstring('return 7') return f()", 0) == 7
    assert raw.cmd("EVAL", "local t = {} t.x = 1 return t.x", 0) == 1


def test_libraries(raw):
    """cjson, bit, redis.sha1hex and Redis's deterministic math.random are there."""
    assert raw.cmd("EVAL", "return cjson.encode({1,2,{a=3}})", 0) == b'[1,2,{"a":3}]'
    assert raw.cmd("EVAL", "return cjson.decode('[1,2,3]')[3]", 0) == 3
    assert raw.cmd("EVAL", "return bit.bxor(5, 3)", 0) == 6
    assert raw.cmd("EVAL", "return redis.sha1hex('')", 0) == \
        b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
    assert raw.cmd("EVAL", "return redis.sha1hex('Pizza & Mandolino')", 0) == \
        b"74822d82031af7493c20eefa13bd07ec4fada82f"
    # Another sequence at every call (Redis 7.0 no longer reseeds between scripts), the same
    # one for the same math.randomseed.
    body = "local t = {} for i = 1, 5 do t[i] = math.random(1000000) end return t"
    first = raw.cmd("EVAL", body, 0)
    assert len(set(first)) > 1
    assert any(raw.cmd("EVAL", body, 0) != first for _ in range(5))
    assert raw.cmd("EVAL", "math.randomseed(7) return math.random(100)", 0) != \
        raw.cmd("EVAL", "math.randomseed(8) return math.random(100)", 0)
    assert raw.cmd("EVAL", "math.randomseed(7) return tostring(math.random())", 0) == \
        raw.cmd("EVAL", "math.randomseed(7) return tostring(math.random())", 0)
    assert raw.cmd("EVAL", "redis.log(redis.LOG_WARNING, 'from a script') return 1", 0) == 1
    assert raw.cmd("EVAL", "redis.set_repl(redis.REPL_ALL) return 1", 0) == 1


HEX = "local function hex(e) return (e:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end "


def test_cmsgpack(raw):
    """cmsgpack packs as Redis's lua-cmsgpack 0.4.0, byte for byte (the smallest integer
    form, float32 where it loses nothing, arrays for keys 1..n, str8 headers, nesting cut at
    16 levels), unpacks back, and unpack_one / unpack_limit step through packed values."""
    def packed(expr):
        return raw.cmd("EVAL", HEX + "return hex(cmsgpack.pack(%s))" % expr, 0).decode()
    assert packed("0.1") == "cb3fb999999999999a"
    assert packed("-1099511627776") == "d3ffffff0000000000"
    assert packed("1, 127, 128, -32, -33, 65536, 0.5, true, nil") == \
        "017fcc80e0d0dfce00010000ca3f000000c3c0"
    assert packed("{}, {1, 2}, {a = 1}") == "909201028" "1a16101"
    assert packed("string.rep('x', 32)").startswith("d920")
    # A table that holds itself packs as a copy cut 16 levels down.
    assert packed("(function() local a = {} a.x = a return a end)()") == "81a178" * 16 + "c0"
    assert raw.cmd("EVAL", "local t = cmsgpack.unpack(cmsgpack.pack({1, {k = 'v'}, -2.5})) "
                   "return {t[1], t[2].k, tostring(t[3])}", 0) == [1, b"v", b"-2.5"]
    assert raw.cmd("EVAL", "local s = cmsgpack.pack('a', 'b', 'c') "
                   "local o1, v1 = cmsgpack.unpack_one(s) "
                   "local o2, v2, v3 = cmsgpack.unpack_limit(s, 2, o1) "
                   "return {o1, v1, o2, v2, v3}", 0) == [2, b"a", -1, b"b", b"c"]
    assert "Missing bytes in input." in raw.cmd("EVAL", "return cmsgpack.unpack('\\220')", 0)
    assert "Bad data format in input." in \
        raw.cmd("EVAL", "return cmsgpack.unpack(string.char(0xc1))", 0)
    assert "MessagePack pack needs input." in raw.cmd("EVAL", "return cmsgpack.pack()", 0)
    # What a script packs is what every replica stores: the value is written as is.
    raw.cmd("DEL", "mp")
    raw.cmd("EVAL", "redis.call('set', KEYS[1], cmsgpack.pack({1, 'two', 3.25})) return 1",
            1, "mp")
    assert raw.cmd("GET", "mp") == bytes.fromhex("9301a374776fca40500000")


def test_struct(raw):
    """struct packs, unpacks and sizes binary records as the library Redis embeds: byte order,
    alignment with '!', sized integers, c0 taking its length from the item before, and its
    error texts."""
    def ev(body):
        return raw.cmd("EVAL", HEX + body, 0)
    assert ev("return hex(struct.pack('>I2i4bh', 258, -2, -1, -300))") == b"0102fffffffeff" b"fed4"
    assert ev("return hex(struct.pack('<!4bi4', 1, 2))") == b"0100000002000000"
    assert ev("return hex(struct.pack('c0sc3', 'abc', 'de', 'fghij'))") == b"6162636465006667" b"68"
    assert ev("return {struct.unpack('>bc0s', string.char(3) .. 'abcxy' .. string.char(0))}") == \
        [b"abc", b"xy", 8]
    assert ev("return {struct.unpack('<i2d', struct.pack('<i2d', -7, 0.25))}") == [-7, 0, 11]
    assert ev("return struct.size('!8bd')") == 16
    assert "option 's' has no fixed size" in ev("return struct.size('s')")
    assert "invalid format option 'z'" in ev("return struct.pack('z')")
    assert "data string too short" in ev("return struct.unpack('i4', 'abc')")


def test_api_errors_and_time_as_redis(raw):
    """The redis.* API's argument errors are Redis 7.0's, without a line (error_reply and
    status_reply return theirs as a value); setmetatable and rawset on a protected table fail
    the same way; TIME answers seconds and microseconds, in a script too."""
    def err(body):
        return raw.cmd("EVAL", body, 0).split(" script: ")[0]
    assert raw.cmd("EVAL", "return redis.error_reply()", 0) == \
        "ERR wrong number or type of arguments"
    assert err("return redis.sha1hex()") == "ERR wrong number of arguments"
    assert err("redis.log()") == "ERR redis.log() requires two arguments or more."
    assert err("redis.setresp(4)") == "ERR RESP version must be 2 or 3."
    assert err("redis.set_repl()") == "ERR redis.set_repl() requires two arguments."
    assert err("setmetatable(_G, {})") == "ERR Attempt to modify a readonly table"
    assert err("a = 1") == "ERR user_script:1: Attempt to modify a readonly table"
    raw.cmd("SCRIPT", "FLUSH")
    raw.cmd("SCRIPT", "LOAD", "return 'cached'")
    info = raw.cmd("INFO", "memory").decode()
    assert "number_of_cached_scripts:1\r\n" in info
    sec, usec = raw.cmd("TIME")
    assert int(sec) > 1600000000 and 0 <= int(usec) < 1000000
    assert int(raw.cmd("EVAL", "return redis.call('time')[1]", 0)) >= int(sec)


def test_acl_check_cmd(srv):
    """redis.acl_check_cmd answers for the script's caller as Redis 7.0 does (Redis's scripting
    unit): true for what its user may run, false for a command or a key it may not, an error
    for an unknown command; a script that writes gets the same answer at apply, where the
    caller is not (its user travels in the entry)."""
    with srv.raw() as admin, srv.raw() as c:
        assert admin.cmd("ACL", "SETUSER", "bob", "on", ">123", "+@scripting", "+set",
                         "~x*") == "OK"
        try:
            assert c.cmd("AUTH", "bob", "123") == "OK"
            assert c.cmd("EVAL", "return redis.acl_check_cmd('set','xx',1)", 1, "xx") == 1
            assert c.cmd("EVAL", "return redis.acl_check_cmd('hset','xx','f',1)", 1,
                         "xx") is None
            assert c.cmd("EVAL", "return redis.acl_check_cmd('set','yy',1)", 0) is None
            assert "ERR Invalid command passed to redis.acl_check_cmd()" in \
                c.cmd("EVAL", "return redis.acl_check_cmd('invalid-cmd','arg')", 0)
            assert c.cmd("EVAL", "redis.call('set', KEYS[1], tostring(redis.acl_check_cmd("
                         "'set', 'xx', 1)) .. tostring(redis.acl_check_cmd('get', 'xx'))) "
                         "return 1", 1, "xa") == 1
            assert admin.cmd("GET", "xa") == b"truefalse"
        finally:
            assert admin.cmd("ACL", "DELUSER", "bob") == 1


def test_writes_before_an_error_stay(raw):
    """As in Redis, a script's writes before its error are kept (no rollback)."""
    raw.cmd("DEL", "w1", "w2")
    err = raw.cmd("EVAL", "redis.call('set', KEYS[1], 'x') error('boom') "
                  "redis.call('set', KEYS[2], 'y')", 2, "w1", "w2")
    assert "boom" in err
    assert raw.cmd("GET", "w1") == b"x"
    assert raw.cmd("GET", "w2") is None


def test_script_cache(raw):
    """SCRIPT LOAD answers the body's SHA-1 (EVALSHA accepts it in any case); EXISTS tells;
    EVAL caches the scripts it runs; FLUSH empties; an unknown SHA is NOSCRIPT."""
    body = "return 'cached ' .. ARGV[1]"
    sha = sha1(body)
    assert raw.cmd("SCRIPT", "FLUSH") == "OK"
    assert raw.cmd("EVALSHA", sha, 0, "x") == NOSCRIPT
    assert raw.cmd("SCRIPT", "LOAD", body) == sha.encode()
    assert raw.cmd("SCRIPT", "EXISTS", sha, "0" * 40) == [1, 0]
    assert raw.cmd("EVALSHA", sha, 0, "x") == b"cached x"
    assert raw.cmd("EVALSHA", sha.upper(), 0, "y") == b"cached y"
    assert raw.cmd("EVALSHA_RO", sha, 0, "z") == b"cached z"
    other = "return 42"
    assert raw.cmd("EVAL", other, 0) == 42
    assert raw.cmd("SCRIPT", "EXISTS", sha1(other)) == [1]
    assert raw.cmd("EVAL", "syntax error here", 0).startswith("ERR Error compiling")
    assert raw.cmd("SCRIPT", "EXISTS", sha1("syntax error here")) == [0]
    assert raw.cmd("SCRIPT", "LOAD", "syntax error here").startswith("ERR Error compiling")
    assert raw.cmd("SCRIPT", "FLUSH", "ASYNC") == "OK"
    assert raw.cmd("SCRIPT", "EXISTS", sha, sha1(other)) == [0, 0]
    assert raw.cmd("SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."
    assert raw.cmd("SCRIPT", "FLUSH", "bad") == "ERR SCRIPT FLUSH only support SYNC|ASYNC option"


def test_read_only_scripts(raw):
    """EVAL_RO and a script declared no-writes read but cannot write."""
    raw.cmd("SET", "ro", "v")
    assert raw.cmd("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "ro") == b"v"
    err = raw.cmd("EVAL_RO", "return redis.call('set', KEYS[1], 'x')", 1, "ro")
    assert err.startswith("ERR Write commands are not allowed from read-only scripts.")
    err = raw.cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'x')", 1,
                  "ro")
    assert err.startswith("ERR Write commands are not allowed from read-only scripts.")
    assert raw.cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", 1,
                   "ro") == b"v"
    assert raw.cmd("EVAL", "#!lua flags=bogus\nreturn 1", 0) == \
        "ERR Unexpected flag in script shebang: bogus"
    assert raw.cmd("EVAL", "#!nolua\nreturn 1", 0) == \
        "ERR Unexpected engine in script shebang: #!nolua"
    assert raw.cmd("GET", "ro") == b"v"


def test_runaway_script_is_stopped_and_server_answers(raw):
    """A script that never ends is stopped after script-max-instructions Lua instructions; its
    writes before stay; the server answers afterwards. lua-time-limit is busy-reply-threshold's
    old name."""
    assert raw.cmd("CONFIG", "SET", "lua-time-limit", "20") == "OK"
    assert raw.cmd("CONFIG", "GET", "busy-reply-threshold") == [b"busy-reply-threshold", b"20"]
    assert raw.cmd("CONFIG", "SET", "script-max-instructions", "2000000") == "OK"
    try:
        raw.cmd("DEL", "before")
        err = raw.cmd("EVAL", "redis.call('set', 'before', '1') while true do end", 0)
        assert "Script killed: it ran past script-max-instructions" in err
        assert raw.cmd("GET", "before") == b"1"
        # pcall cannot swallow the stop.
        err = raw.cmd("EVAL", "local ok = pcall(function() while true do end end) "
                      "while true do end", 0)
        assert "Script killed: it ran past script-max-instructions" in err
        assert raw.cmd("PING") == "PONG"
    finally:
        assert raw.cmd("CONFIG", "SET", "busy-reply-threshold", "5000") == "OK"
        assert raw.cmd("CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"


BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")


def wait_busy(port, expected):
    """Waits until a new connection's PING is answered `expected` (the script runs past
    busy-reply-threshold): new connections are accepted while a script is busy."""
    def busy():
        with RawConn(port) as c:
            reply = c.cmd("PING")
        assert reply in ("PONG", expected), reply
        return reply == expected
    wait_for(busy, 30, "the script to be busy")


def test_busy_script_killed_before_it_writes(srv):
    """Past busy-reply-threshold other clients get -BUSY; SCRIPT KILL stops a script that has
    not written (FUNCTION KILL refuses an EVAL, and the reverse); its client gets the error
    and its pipelined PING afterwards; FUNCTION STATS names a running function. The script
    stopped on the leader before any write, so nothing was proposed: were it in the log, it
    would run at apply, unkillable, and end by its budget instead."""
    with srv.raw() as cfg:
        assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "10") == "OK"
        assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "100000000000000") == "OK"
        try:
            with srv.raw(timeout=60) as a, srv.raw(timeout=60) as b:
                body = ("if redis.call('exists', KEYS[1]) == 0 then while true do end end "
                        "redis.call('set', KEYS[1], 'v')")
                a.send(a.encode("EVAL", body, 1, "busykey") + a.encode("PING"))
                wait_busy(srv.port, BUSY_EVAL)
                assert b.cmd("GET", "busykey") == BUSY_EVAL
                assert b.cmd("FUNCTION", "KILL") == BUSY_EVAL
                assert b.cmd("SCRIPT", "KILL") == "OK"
                err = a.read()
                assert isinstance(err, str) and "Script killed by user with SCRIPT KILL" in err
                assert a.read() == "PONG"
                assert b.cmd("PING") == "PONG"
                assert b.cmd("EXISTS", "busykey") == 0
                assert b.cmd("SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."

                lib = ("#!lua name=busylib\nredis.register_function('spin', function(keys, args) "
                       "local a = 1 while true do a = a + 1 end end)")
                assert b.cmd("FUNCTION", "LOAD", "REPLACE", lib) == b"busylib"
                a.send(a.encode("FCALL", "spin", 0))
                wait_busy(srv.port, BUSY_FUNCTION)
                stats = b.cmd("FUNCTION", "STATS")
                running = dict(zip(stats[1][0::2], stats[1][1::2]))
                assert running[b"name"] == b"spin"
                assert running[b"command"] == [b"fcall", b"spin", b"0"]
                assert b.cmd("SCRIPT", "KILL") == BUSY_FUNCTION
                assert b.cmd("FUNCTION", "KILL") == "OK"
                assert "Script killed by user" in a.read()
                assert b.cmd("PING") == "PONG"
                assert b.cmd("FUNCTION", "DELETE", "busylib") == "OK"
        finally:
            assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "5000") == "OK"
            assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"


def test_busy_script_that_wrote_is_unkillable(srv):
    """A script that reached a write runs at apply (it is in the log): SCRIPT KILL answers
    -UNKILLABLE, other clients get -BUSY until its budget stops it, and its write stays."""
    with srv.raw() as cfg:
        assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "10") == "OK"
        # Long enough (seconds) for the test to see it busy, short enough to wait for.
        assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "600000000") == "OK"
        try:
            with srv.raw(timeout=60) as a, srv.raw(timeout=60) as b:
                a.send(a.encode("EVAL", "redis.call('set', KEYS[1], 'y') while true do end",
                                1, "wrote"))
                wait_busy(srv.port, BUSY_EVAL)
                assert b.cmd("SCRIPT", "KILL").startswith(
                    "UNKILLABLE Sorry the script already executed write commands")
                err = a.read()
                assert "Script killed: it ran past script-max-instructions" in err
                assert b.cmd("GET", "wrote") == b"y"
        finally:
            assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "5000") == "OK"
            assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"


def test_endless_read_only_script_stopped_by_its_budget_is_not_proposed(servers):
    """A script that never writes and runs past script-max-instructions is stopped on the
    leader, and nothing is proposed: on the merged code it went into the log anyway and ran
    a second time at apply, busy and unkillable (SCRIPT KILL answered UNKILLABLE "runs at
    apply") for as long again; in Redis's scripting unit, a test whose SCRIPT KILL came late
    met that second run, and the unit stopped with the endless script running. FCALL too.
    A server of its own: on the module's shared one, entries of the earlier tests' sessions
    (expiring) could lengthen the log meanwhile. 20 million instructions take a fraction of a
    second on an idle machine, many seconds on a loaded one: each answer may take a minute."""
    s = servers.start({"script-max-instructions": 20000000})
    with s.raw(timeout=60.0) as cfg:
        # A new node writes two entries of its own once it leads (its term's no-op, then its
        # member record): the second could otherwise land after `before` below.
        wait_for(lambda: int(info_dict(cfg, "replication")["raft_commit_index"]) >= 2, 30,
                 "the node's own first entries")
        assert cfg.cmd("FUNCTION", "LOAD", "REPLACE",
                       "#!lua name=endless\nredis.register_function('endless', "
                       "function(keys, args) while true do end end)") == b"endless"
        before = info_dict(cfg, "replication")["raft_last_index"]
        err = cfg.cmd("EVAL", "while true do end", 0)
        assert "Script killed: it ran past script-max-instructions" in err
        err = cfg.cmd("EVAL", "local f = function() while 1 do redis.call('ping') end end "
                      "while 1 do pcall(f) end", 0)
        assert "Script killed: it ran past script-max-instructions" in err
        err = cfg.cmd("FCALL", "endless", 0)
        assert "Script killed: it ran past script-max-instructions" in err
        assert info_dict(cfg, "replication")["raft_last_index"] == before
        assert cfg.cmd("SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."


def start_endless(servers, body, numkeys=0, *keys):
    """A server of its own running `body` past busy-reply-threshold with no budget to speak
    of; returns (server, the script's connection)."""
    s = servers.start({"busy-reply-threshold": 10, "script-max-instructions": 10 ** 15})
    a = s.raw(timeout=60)
    a.send(a.encode("EVAL", body, numkeys, *keys))
    wait_busy(s.port, BUSY_EVAL)
    return s, a


def test_sigterm_stops_a_server_running_an_endless_script(servers):
    """SIGTERM ends a server whose script never ends (on the merged code, libuv's signal pipe
    was never read while the script held the loop: the server ignored SIGTERM). A script that
    has not written is stopped, and the server shuts down cleanly (exit 0); its client is told
    why."""
    s, a = start_endless(servers, "while true do end")
    with a:
        s.send_signal(signal.SIGTERM)
        assert s.wait_exit(30) == 0, s.log_tail()
        err = a.read()
        assert isinstance(err, str) and "Script killed: the server is shutting down" in err
    assert "while a script runs: the script is stopped" in s.log_tail()


def test_sigterm_or_shutdown_nosave_stop_a_script_that_wrote(servers):
    """A script that wrote runs at apply and cannot be stopped part-way (this replica's store
    would differ from the others'). SIGTERM then exits at once without a clean shutdown (exit
    1, said in the log); SHUTDOWN NOSAVE, Redis's answer to an unkillable script, exits 0."""
    body = "redis.call('set', KEYS[1], 'y') while true do end"
    s, a = start_endless(servers, body, 1, "wrote")
    with a, s.raw() as b:
        assert b.cmd("SCRIPT", "KILL").startswith("UNKILLABLE")
        s.send_signal(signal.SIGTERM)
        rc = s.wait_exit(30)
        s._stopped = rc is not None  # an exit other than 0 is this test's to judge
        assert rc == 1, s.log_tail()
    assert "runs at apply, which cannot be stopped part-way" in s.log_tail()

    s, a = start_endless(servers, body, 1, "wrote")
    with a, s.raw() as b:
        assert b.cmd("PING") == BUSY_EVAL
        b.send(b.encode("SHUTDOWN", "NOSAVE"))
        assert s.wait_exit(30) == 0, s.log_tail()
    assert "SHUTDOWN NOSAVE while a script runs: exiting now" in s.log_tail()


def test_reply_made_before_a_busy_script_is_sent_while_it_runs(servers):
    """A reply made in the loop step that then starts an endless script (a PING read just
    before the EVAL) goes out while the script runs, as Redis sends it from its busy hook. On
    the merged code it stayed in its buffer until the script ended: its client waited for it
    and sent nothing more, which is how Redis's scripting unit got stuck ("Timedout script
    does not cause a false dead client" waiting for -BUSY, its SCRIPT KILL never sent). The
    server is stopped so that both requests are read in one step, the PING first."""
    s = servers.start({"busy-reply-threshold": 10, "script-max-instructions": 10 ** 15})
    with s.raw(timeout=20) as r, s.raw(timeout=60) as a:
        assert r.cmd("PING") == "PONG" and a.cmd("PING") == "PONG"
        s.send_signal(signal.SIGSTOP)
        try:
            r.send(r.encode("PING"))
            time.sleep(0.2)  # not a wait for a condition: the order the stopped server reads
            a.send(a.encode("EVAL", "while 1 do redis.call('ping') end", 0))
        finally:
            s.send_signal(signal.SIGCONT)
        # PONG when the PING came first (the case this test is for), -BUSY otherwise; either
        # way before the script ends, which it never does by itself.
        first = r.read()
        assert first in ("PONG", BUSY_EVAL)
        wait_busy(s.port, BUSY_EVAL)
        assert r.cmd("SCRIPT", "KILL") == "OK"
        assert "Script killed by user" in a.read()
        assert r.cmd("PING") == "PONG"


def test_xread_in_scripts_never_blocks(raw):
    """XREAD and XREADGROUP run inside scripts (XREADGROUP's delivery is a write applied with
    the script), but never with BLOCK, as Redis."""
    raw.cmd("DEL", "xs")
    assert raw.cmd("XGROUP", "CREATE", "xs", "g", "$", "MKSTREAM") == "OK"
    assert raw.cmd("EVAL", "return redis.pcall('xread', 'STREAMS', KEYS[1], '$')", 1,
                   "xs") is None
    err = raw.cmd("EVAL", "return redis.pcall('xread', 'BLOCK', 0, 'STREAMS', KEYS[1], '$')",
                  1, "xs")
    assert err == "ERR xread command is not allowed with BLOCK option from scripts"
    assert raw.cmd("XADD", "xs", "1-1", "a", "b") == b"1-1"
    assert raw.cmd("EVAL", "return redis.call('xreadgroup', 'GROUP', 'g', 'c', 'STREAMS', "
                   "KEYS[1], '>')", 1, "xs") == [[b"xs", [[b"1-1", [b"a", b"b"]]]]]
    assert raw.cmd("XPENDING", "xs", "g")[0] == 1
    err = raw.cmd("EVAL", "return redis.pcall('xreadgroup', 'GROUP', 'g', 'c', 'BLOCK', 0, "
                  "'STREAMS', KEYS[1], '>')", 1, "xs")
    assert err == "ERR xreadgroup command is not allowed with BLOCK option from scripts"


def test_script_memory_is_bounded(raw):
    """A script that grows without bound gets an out-of-memory error; the server goes on."""
    err = raw.cmd("EVAL", "local t = {} local s = string.rep('x', 1024 * 1024) "
                  "for i = 1, 1000 do t[i] = s .. i end return #t", 0)
    assert "not enough memory" in err
    assert raw.cmd("PING") == "PONG"


def test_replica_dependent_commands_inside_scripts(raw):
    """A script runs on every replica, so commands whose result depends on a replica's own
    table layout are refused inside (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY, the SCANs) and
    the ones whose order does are sorted (SMEMBERS, HKEYS, HVALS, HGETALL by field, KEYS...);
    EVAL_RO, which runs on one node, may use the random ones."""
    raw.cmd("DEL", "rs", "rh")
    members = ["m%03d" % i for i in range(300)]
    raw.cmd("SADD", "rs", *reversed(members))
    raw.cmd("HSET", "rh", "b", "2", "a", "1", "c", "3")
    for cmd in ("'spop', KEYS[1]", "'srandmember', KEYS[1]", "'hrandfield', KEYS[2]",
                "'randomkey'", "'sscan', KEYS[1], 0"):
        err = raw.cmd("EVAL", "return redis.call(%s)" % cmd, 2, "rs", "rh")
        assert "depends on the replica" in err, (cmd, err)
    assert raw.cmd("EVAL", "return redis.call('smembers', KEYS[1])", 1, "rs") == \
        [m.encode() for m in members]
    assert raw.cmd("EVAL", "return redis.call('hgetall', KEYS[1])", 1, "rh") == \
        [b"a", b"1", b"b", b"2", b"c", b"3"]
    assert raw.cmd("EVAL", "return redis.call('hvals', KEYS[1])", 1, "rh") == [b"1", b"2", b"3"]
    assert raw.cmd("EVAL_RO", "return redis.call('srandmember', KEYS[1])", 1, "rs") in \
        [m.encode() for m in members]


def test_scripts_in_a_transaction(raw):
    """EVAL and EVAL_RO queue inside MULTI and run inside its one entry."""
    raw.cmd("DEL", "tx")
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("EVAL", "return redis.call('incrby', KEYS[1], 5)", 1, "tx") == "QUEUED"
    assert raw.cmd("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "tx") == "QUEUED"
    assert raw.cmd("EXEC") == [5, b"5"]


def test_functions(raw):
    """FUNCTION LOAD [REPLACE], FCALL (case-insensitive names), FCALL_RO of a no-writes
    function, LIST, STATS, DELETE and FLUSH, with Redis's error texts."""
    raw.cmd("FUNCTION", "FLUSH")
    code = ("#!lua name=mylib\n"
            "local function incr(keys, args) return redis.call('incrby', keys[1], args[1]) end\n"
            "redis.register_function('myincr', incr)\n"
            "redis.register_function{function_name='myget', callback=function(keys, args)\n"
            "  return redis.call('get', keys[1]) end, flags={'no-writes'}}\n")
    assert raw.cmd("FUNCTION", "LOAD", code) == b"mylib"
    assert "already exists" in raw.cmd("FUNCTION", "LOAD", code)
    assert raw.cmd("FUNCTION", "LOAD", "REPLACE", code) == b"mylib"
    raw.cmd("DEL", "fk")
    assert raw.cmd("FCALL", "myincr", 1, "fk", 3) == 3
    assert raw.cmd("FCALL", "MYINCR", 1, "fk", 4) == 7
    assert raw.cmd("FCALL_RO", "myget", 1, "fk") == b"7"
    assert raw.cmd("FCALL_RO", "myincr", 1, "fk", 1) == \
        "ERR Can not execute a script with write flag using *_ro command."
    assert raw.cmd("FCALL", "nosuch", 0) == "ERR Function not found"
    assert raw.cmd("FCALL", "myincr", "x") == "ERR Bad number of keys provided"
    libs = raw.cmd("FUNCTION", "LIST")
    assert len(libs) == 1 and libs[0][1] == b"mylib"
    names = sorted(f[1] for f in libs[0][5])
    assert names == [b"myget", b"myincr"]
    assert raw.cmd("FUNCTION", "LIST", "WITHCODE")[0][7] == code.encode()
    assert raw.cmd("FUNCTION", "STATS")[3][1][1] == 1
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('myget', "
                   "function() return 1 end)") == "ERR Function myget already exists"
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=bad\nreturn 1") == \
        "ERR No functions registered"
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=bad\nredis.call('set', 'x', 1)").startswith(
        "ERR Error registering functions")
    assert raw.cmd("FUNCTION", "LOAD", "#!nolua name=x\n") == "ERR Engine 'nolua' not found"
    assert raw.cmd("FUNCTION", "LOAD", "return 1") == "ERR Missing library metadata"
    assert raw.cmd("FUNCTION", "KILL") == "NOTBUSY No scripts in execution right now."
    assert raw.cmd("FUNCTION", "DELETE", "nosuch") == "ERR Library not found"
    assert raw.cmd("FUNCTION", "DELETE", "mylib") == "OK"
    assert raw.cmd("FCALL", "myincr", 1, "fk", 1) == "ERR Function not found"
    assert raw.cmd("FUNCTION", "LOAD", code) == b"mylib"
    assert raw.cmd("FUNCTION", "FLUSH") == "OK"
    assert raw.cmd("FUNCTION", "LIST") == []


def test_function_load_and_list_errors_as_redis(raw):
    """A library's code sees at load only what Redis 7.0 gives it (redis.register_function,
    redis.log, the versions): anything else is a nonexistent global; register_function's and
    the metadata line's errors, FUNCTION LIST's arguments and FUNCTION's subcommand errors are
    Redis's texts, word for word."""
    def load(body):
        return raw.cmd("FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\n" + body)
    prefix = "ERR Error registering functions: "
    assert load("redis.register_function()") == \
        prefix + "ERR wrong number of arguments to redis.register_function"
    assert load("redis.register_function('f1')") == prefix + (
        "ERR calling redis.register_function with a single argument is only applicable to Lua "
        "table (representing named arguments).")
    assert load("redis.register_function(nil, function() end)") == \
        prefix + "ERR first argument to redis.register_function must be a string"
    assert load("redis.register_function('', function() end)") == prefix + (
        "ERR Library names can only contain letters, numbers, or underscores(_) and must be at "
        "least one character long")
    assert load("redis.register_function{function_name='f1', callback=function() end, "
                "description='some desc', flags={'no-writes'}}") == b"lib"
    lib = raw.cmd("FUNCTION", "LIST", "LIBRARYNAME", "lib")[0]
    assert lib[5] == [[b"name", b"f1", b"description", b"some desc", b"flags", ["no-writes"]]]
    assert load("redis.register_function{callback=function() end}") == \
        prefix + "ERR redis.register_function must get a function name argument"
    assert load("redis.register_function{function_name='f1', bad=1}") == \
        prefix + "ERR unknown argument given to redis.register_function"
    assert load("redis.register_function{function_name='f1', callback=function() end, "
                "flags='no-writes'}") == prefix + ("ERR flags argument to "
                "redis.register_function must be a table representing function flags")
    assert load("redis.register_function{function_name='f1', callback=function() end, "
                "flags={'bad'}}") == prefix + "ERR unknown flag given"
    for body, name in (("return math.random()", "math"), ("return redis.call('ping')", "call"),
                       ("redis.setresp(3)", "setresp"), ("redis.redis.call('ping')", "redis")):
        assert load(body) == prefix + "ERR user_function:2: Script attempted to access " \
            "nonexistent global variable '%s'" % name, body
    assert load("a = 1") == prefix + "ERR user_function:2: Attempt to modify a readonly table"
    # At run time the function sees every global, and register_function is not one of them.
    assert load("redis.register_function('f1', function() return redis.call('ping') end)\n"
                "redis.register_function('f2', function() return redis.register_function end)"
                ) == b"lib"
    assert raw.cmd("FCALL", "f1", 0) == "PONG" and raw.cmd("FCALL", "f2", 0) is None
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=a name=b\n") == \
        "ERR Invalid metadata value, name argument was given multiple times"
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=x\0\n") == "ERR Invalid library metadata"
    assert raw.cmd("FUNCTION", "LOAD", "REPLACE", '#!lua name="q"\nredis.register_function('
                   "'fq', function() return 1 end)") == b"q"
    assert raw.cmd("FUNCTION", "LIST", "bad") == "ERR Unknown argument bad"
    assert raw.cmd("FUNCTION", "LIST", "LIBRARYNAME") == "ERR library name argument was not given"
    assert raw.cmd("FUNCTION", "LIST", "WITHCODE", "WITHCODE") == "ERR Unknown argument WITHCODE"
    assert raw.cmd("FUNCTION", "BAD") == "ERR unknown subcommand 'BAD'. Try FUNCTION HELP."
    assert raw.cmd("FUNCTION", "STATS", "x") == \
        "ERR wrong number of arguments for 'function|stats' command"
    assert raw.cmd("FCALL", "nosuch", "x") == "ERR Function not found"
    raw.cmd("FUNCTION", "FLUSH")


def test_pipelined_function_loads_are_all_answered(srv):
    """Requests pipelined behind FUNCTION LOAD (run in every partition, then answered) run as
    soon as it is answered: 100 LOAD + FCALL pairs sent at once are all answered, in order,
    with no further byte from the client (they used to wait for one, Redis's scripting unit
    stalled on its 10,000 pairs)."""
    code = ("#!lua name=pipe\nredis.register_function('pipe', function(keys, args) "
            "return redis.call('incr', keys[1]) end)")
    with srv.raw() as c:
        c.cmd("DEL", "pipe_n")
        c.send(b"".join(RawConn.encode("FUNCTION", "LOAD", "REPLACE", code) +
                        RawConn.encode("FCALL", "pipe", 1, "pipe_n") for _ in range(100)))
        for i in range(100):
            assert c.read() == b"pipe"
            assert c.read() == i + 1
        c.cmd("FUNCTION", "DELETE", "pipe")


def test_function_dump_and_restore(raw):
    """FUNCTION DUMP's payload restores the libraries with Redis's policies, all or nothing:
    APPEND refuses a library or function that exists (and changes nothing), REPLACE swaps
    libraries of the same name, FLUSH drops the others first; a damaged payload and a wrong
    policy are refused with Redis's errors."""
    raw.cmd("FUNCTION", "FLUSH")
    lib1 = ("#!lua name=lib1\nredis.register_function('f1', function() return 1 end)\n"
            "redis.register_function('f3', function() return 3 end)")
    assert raw.cmd("FUNCTION", "LOAD", lib1) == b"lib1"
    dump = raw.cmd("FUNCTION", "DUMP")
    assert isinstance(dump, bytes)
    assert raw.cmd("FUNCTION", "FLUSH") == "OK"
    assert raw.cmd("FUNCTION", "RESTORE", dump) == "OK"
    assert raw.cmd("FCALL", "f3", 0) == 3
    assert raw.cmd("FUNCTION", "RESTORE", dump, "APPEND") == "ERR Library lib1 already exists"
    assert raw.cmd("FUNCTION", "FLUSH") == "OK"
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=lib1\nredis.register_function('f6', "
                   "function() return 6 end)") == b"lib1"
    assert raw.cmd("FUNCTION", "LOAD", "#!lua name=lib2\nredis.register_function('f3', "
                   "function() return 33 end)") == b"lib2"
    assert raw.cmd("FUNCTION", "RESTORE", dump, "REPLACE") == "ERR Function f3 already exists"
    assert raw.cmd("FCALL", "f6", 0) == 6 and raw.cmd("FCALL", "f3", 0) == 33  # nothing changed
    assert raw.cmd("FUNCTION", "RESTORE", dump, "FLUSH") == "OK"
    assert [lib[1] for lib in raw.cmd("FUNCTION", "LIST")] == [b"lib1"]
    assert raw.cmd("FCALL", "f3", 0) == 3 and raw.cmd("FCALL", "f6", 0) == "ERR Function not found"
    assert raw.cmd("FUNCTION", "RESTORE", dump[:-1] + bytes([dump[-1] ^ 1])) == \
        "ERR payload version or checksum are wrong"
    assert raw.cmd("FUNCTION", "RESTORE", dump, "MERGE").startswith("ERR Wrong restore policy")
    assert raw.cmd("FUNCTION", "RESTORE", "a", "b", "c").startswith(
        "ERR unknown subcommand or wrong number of arguments for 'RESTORE'")
    assert raw.cmd("FUNCTION", "FLUSH") == "OK"
    assert raw.cmd("FUNCTION", "RESTORE", raw.cmd("FUNCTION", "DUMP")) == "OK"  # empty payload
    assert raw.cmd("FUNCTION", "LIST") == []


def test_redis_py_and_redis_cli(srv, tmp_path):
    """redis-py's register_script (EVALSHA, falling back to EVAL on NOSCRIPT) and redis-cli
    --eval both work."""
    r = redis.Redis(host="127.0.0.1", port=srv.port, decode_responses=True)
    r.script_flush()
    add = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    r.delete("py")
    assert add(keys=["py"], args=[2]) == 2
    assert add(keys=["py"], args=[3]) == 5
    assert r.script_exists(add.sha) == [True]
    r.close()
    script = tmp_path / "s.lua"
    script.write_text("return {KEYS[1], ARGV[1]}")
    out = subprocess.run(["redis-cli", "-p", str(srv.port), "--eval", str(script), "ck", ",",
                          "cv"], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and out.stdout.split() == ["ck", "cv"], out


@pytest.mark.halyard_only
def test_cache_and_libraries_survive_a_restart(servers):
    """The script cache and the function libraries are replicated state: they come back from
    the log and from a snapshot after a restart."""
    s = servers.start()
    with RawConn(s.port) as c:
        sha = c.cmd("SCRIPT", "LOAD", "return 'kept'").decode()
        assert c.cmd("FUNCTION", "LOAD", "#!lua name=keep\nredis.register_function('kf', "
                     "function() return 'kf' end)") == b"keep"
    for snapshot in (False, True):
        s.stop()
        s = Server(s.argv, s.port, s.workdir)
        servers.servers.append(s)
        s.wait_ready()
        with RawConn(s.port) as c:
            wait_for(lambda: c.cmd("EVALSHA", sha, 0) == b"kept", 10, "the log to replay")
            assert c.cmd("FCALL", "kf", 0) == b"kf"
            if not snapshot:
                assert c.cmd("HALYARD", "SNAPSHOT").startswith("OK")


# ---- a 3-node cluster --------------------------------------------------------------------------


def _replica(port, *cmd):
    with RawConn(port) as c:
        assert c.cmd("READONLY") == "OK"
        return c.cmd(*cmd)


# Loops for ever unless KEYS[1] exists: the leader's probe runs it before any write, so
# SCRIPT KILL can stop it and nothing is proposed.
ENDLESS_UNTIL_SET = ("if redis.call('get', KEYS[1]) == false then while true do end end "
                     "return redis.call('incr', KEYS[1])")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


@pytest.mark.halyard_only
def test_script_killed_on_the_leader_is_never_replicated(cluster):
    """A script killed on the leader before it wrote (the probe) produces no log entry: were it
    proposed, every replica would run it at apply, where it loops on (its budget is huge and a
    run at apply cannot be killed), and no later write could apply anywhere. So a write after
    the kill reaches every replica, and the script's key is absent on all of them."""
    li = cluster.leader()
    lport = cluster.ports[li]
    with RawConn(lport, timeout=60) as cfg:
        assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "10") == "OK"
        assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "100000000000000") == "OK"
        try:
            with RawConn(lport, timeout=60) as a, RawConn(lport, timeout=60) as b:
                a.send(a.encode("EVAL", ENDLESS_UNTIL_SET, 1, "{k}never"))
                wait_busy(lport, BUSY_EVAL)
                assert b.cmd("SCRIPT", "KILL") == "OK"
                err = a.read()
                assert isinstance(err, str) and "Script killed by user with SCRIPT KILL" in err
        finally:
            assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "5000") == "OK"
            assert cfg.cmd("CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"
    # Through any node (the leader may have changed while it was busy): a plain write after.
    def marker_set():
        with RawConn(cluster.ports[(li + 1) % 3], timeout=10) as c:
            return c.cmd("SET", "{k}marker", "1") == "OK"  # an error (TRYAGAIN): again
    wait_for(marker_set, 30, "a write after the kill")
    for p in cluster.ports:
        wait_for(lambda: _replica(p, "GET", "{k}marker") == b"1", 30,
                 "replica %d to apply the write after the kill" % p)
        assert _replica(p, "GET", "{k}never") is None


def _health(c, i):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % c.http_port(i), timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.halyard_only
def test_busy_script_through_a_follower(cluster):
    """A client of a follower sees what a client of one Redis server sees while the leader
    runs a busy script: -BUSY for other requests once the script ran the follower's
    busy-reply-threshold (a transaction is doomed), SCRIPT KILL sent to the follower stops it
    (FUNCTION KILL is refused as for an EVAL), and its client gets the kill. Meanwhile the
    leader keeps its leadership: it runs for many election timeouts, but its busy notices
    hold off the followers' elections, so the same node leads the same term after it."""
    li = cluster.leader()
    fi = (li + 1) % 3
    fport, lport = cluster.ports[fi], cluster.ports[li]
    wait_for(lambda: info(fport)["raft_leader"] != "", 10, "the follower to learn who leads")
    term = cluster.term(li)
    for i in range(3):  # /health serves a snapshot the shell publishes a few times a second
        wait_for(lambda: _health(cluster, i)["term"] == term, 10, "/health to show the term")
    with RawConn(lport) as lc, RawConn(fport) as cfg:
        assert lc.cmd("CONFIG", "SET", "script-max-instructions", "100000000000000") == "OK"
        assert cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "10") == "OK"
        try:
            with RawConn(fport, timeout=60) as a, RawConn(fport, timeout=60) as b:
                a.send(a.encode("EVAL", ENDLESS_UNTIL_SET, 1, "{b}busy") + a.encode("PING"))
                wait_busy(fport, BUSY_EVAL)
                assert b.cmd("MULTI") == "OK"
                assert b.cmd("INCR", "{b}busy") == BUSY_EVAL
                # Busy for many election timeouts (300 ms by default): nobody campaigns.
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    for i in range(3):
                        if i != li:
                            h = _health(cluster, i)
                            assert h["term"] == term and h["leader"] == cluster.names[li], h
                    time.sleep(0.1)
                assert b.cmd("FUNCTION", "KILL") == BUSY_EVAL
                assert b.cmd("SCRIPT", "KILL") == "OK"
                err = a.read()
                assert isinstance(err, str) and "Script killed by user with SCRIPT KILL" in err
                assert a.read() == "PONG"
                assert b.cmd("EXEC").startswith("EXECABORT")
                assert b.cmd("PING") == "PONG"
                assert b.cmd("SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."
                assert b.cmd("GET", "{b}busy") is None
        finally:
            cfg.cmd("SCRIPT", "KILL")  # should the test fail while the script runs
            wait_for(lambda: cfg.cmd("CONFIG", "SET", "busy-reply-threshold", "5000") == "OK", 10,
                     "the follower to see the script end")
            assert lc.cmd("CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"
    assert cluster.leader() == li and cluster.term(li) == term


@pytest.mark.halyard_only
def test_script_kill_through_a_follower_is_answered_when_the_busy_leader_stops(cluster):
    """A SCRIPT KILL sent to a follower while the leader runs a busy script is forwarded to the
    leader; should the leader stop answering (SIGSTOP: no kill reply, no more busy notices),
    the follower's client still gets an answer within request-timeout-ms of the last notice,
    not a wait for ever (session 18 saw the client hang: a leader change meanwhile sent the
    forward back to the stopped node, lost again at once, and the follower's loop spun; the
    deterministic case is test_proxy's
    test_script_kill_forwarded_to_a_stopped_busy_leader_is_answered). What the answer is
    depends on the race with the election: -TRYAGAIN from the stopped node's silence, or OK
    when the follower had already sent the EVAL again to a new leader (its session makes
    that safe) and the kill went there."""
    li = cluster.leader()
    fi = (li + 1) % 3
    fport, lport = cluster.ports[fi], cluster.ports[li]
    wait_for(lambda: info(fport)["raft_leader"] != "", 10, "the follower to learn who leads")
    leader = cluster.nodes[li]
    assert _cmd(lport, "CONFIG", "SET", "script-max-instructions", "100000000000000") == "OK"
    assert _cmd(fport, "CONFIG", "SET", "busy-reply-threshold", "10") == "OK"
    stopped = False
    try:
        with RawConn(fport, timeout=60) as a:
            a.send(a.encode("EVAL", ENDLESS_UNTIL_SET, 1, "{s}stopped"))
            wait_busy(fport, BUSY_EVAL)
            leader.send_signal(signal.SIGSTOP)
            stopped = True
            wait_for(lambda: _proc_state(leader.proc.pid) == "T", 10, "the leader to stop")
            # request-timeout-ms is 5 s; the socket's 30 s is the hang this is about.
            with RawConn(fport, timeout=30) as b:
                reply = b.cmd("SCRIPT", "KILL")
            assert isinstance(reply, str) and reply.split()[0] in (
                "TRYAGAIN", "OK", "NOTBUSY", "UNKNOWN", "CLUSTERDOWN"), reply
    finally:
        if stopped:
            leader.send_signal(signal.SIGCONT)
        wait_for(lambda: _no_script_anywhere(cluster), 60, "every node to run no script")
        assert _cmd(lport, "CONFIG", "SET", "script-max-instructions", "1000000000") == "OK"
        assert _cmd(fport, "CONFIG", "SET", "busy-reply-threshold", "5000") == "OK"


def _no_script_anywhere(cluster):
    """Kills what script runs on any node (the endless one may run again on a new leader);
    true once none does."""
    for p in cluster.ports:
        if _cmd(p, "SCRIPT", "KILL") not in ("OK", "NOTBUSY No scripts in execution right now."):
            return False
    return all(_cmd(p, "PING") == "PONG" for p in cluster.ports)


def _proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _cmd(port, *args):
    with RawConn(port) as c:
        return c.cmd(*args)


@pytest.mark.halyard_only
def test_acl_check_cmd_through_a_follower_answers_for_the_clients_user(cluster):
    """A user made through a follower can AUTH there at once (the follower waits for its
    replica to hold the ACL SETUSER its client had acknowledged), and a script it sends
    through the follower runs on the leader as that user: redis.acl_check_cmd answers for
    it, not for the default user (the forward carries the user)."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10,
             "the follower to learn who leads")
    with RawConn(cluster.ports[fi]) as c:
        assert c.cmd("ACL", "SETUSER", "bob16", "on", ">123", "+@scripting", "+set",
                     "~x*") == "OK"
        assert c.cmd("AUTH", "bob16", "123") == "OK"
        assert c.cmd("EVAL", "return redis.acl_check_cmd('set','xx',1)", 1, "xx") == 1
        assert c.cmd("EVAL", "return redis.acl_check_cmd('hset','xx','f',1)", 1, "xx") is None
        assert c.cmd("EVAL", "return redis.acl_check_cmd('set','yy',1)", 1, "xx") is None
    with RawConn(cluster.ports[fi]) as c:
        assert c.cmd("ACL", "DELUSER", "bob16") == 1


@pytest.mark.halyard_only
def test_scripts_through_a_follower_apply_identically(cluster):
    """Scripts sent to a follower run once, as one entry, on every replica: SMEMBERS's order
    (sorted for scripts), math.random and the entry's time give every replica the same values;
    SCRIPT LOAD reaches every replica, so EVALSHA works on any node."""
    li = cluster.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cluster.ports[fi])["raft_leader"] != "", 10,
             "the follower to learn who leads")
    # The set outgrows its compact encoding (its order then follows each replica's own
    # hashing): the list a script builds from SMEMBERS must still be the same everywhere.
    body = ("redis.call('sadd', KEYS[1], unpack(ARGV)) "
            "local m = redis.call('smembers', KEYS[1]) "
            "redis.call('rpush', KEYS[2], m[1], m[#m], tostring(math.random(1000000))) "
            "redis.call('set', KEYS[3], 'v', 'EX', 1000) "
            "return redis.call('llen', KEYS[2])")
    with RawConn(cluster.ports[fi]) as f:
        for i in range(5):
            assert f.cmd("EVAL", body, 3, "{s}set", "{s}list", "{s}t",
                         *range(i * 100, i * 100 + 100)) == 3 * (i + 1)
        sha = f.cmd("SCRIPT", "LOAD", "return redis.call('incr', KEYS[1])").decode()
        assert f.cmd("EVALSHA", sha, 1, "{s}n") == 1
        want = f.cmd("LRANGE", "{s}list", 0, -1)
        members = sorted(f.cmd("SMEMBERS", "{s}set"))
        expiry = f.cmd("PEXPIRETIME", "{s}t")
    for p in cluster.ports:
        wait_for(lambda: _replica(p, "LRANGE", "{s}list", 0, -1) == want, 10,
                 "replica %d to apply the scripts" % p)
        assert sorted(_replica(p, "SMEMBERS", "{s}set")) == members
        assert _replica(p, "PEXPIRETIME", "{s}t") == expiry
        assert _replica(p, "SCRIPT", "EXISTS", sha) == [1]
        with RawConn(p) as c:
            assert c.cmd("EVALSHA", sha, 1, "{s}n") in range(2, 5)
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("GET", "{s}n") == b"4"


@pytest.mark.halyard_only
def test_evalsha_unknown_and_read_only_on_a_follower(cluster):
    """An unknown SHA is NOSCRIPT through a follower as on the leader; EVAL_RO on a READONLY
    connection reads the follower's own replica."""
    li = cluster.leader()
    fi = (li + 2) % 3
    for p in (cluster.ports[li], cluster.ports[fi]):
        with RawConn(p) as c:
            assert c.cmd("EVALSHA", "f" * 40, 0) == NOSCRIPT
            assert c.cmd("EVALSHA_RO", "f" * 40, 0) == NOSCRIPT
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("SET", "rok", "v") == "OK"
    wait_for(lambda: _replica(cluster.ports[fi], "GET", "rok") == b"v", 10, "the follower")
    with RawConn(cluster.ports[fi]) as c:
        assert c.cmd("READONLY") == "OK"
        assert c.cmd("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "rok") == b"v"


@pytest.mark.halyard_only
def test_functions_through_a_follower(cluster):
    """FUNCTION LOAD through a follower reaches every replica; FCALL through any node runs
    once; every replica holds the same result."""
    li = cluster.leader()
    fi = (li + 1) % 3
    with RawConn(cluster.ports[fi]) as f:
        f.cmd("FUNCTION", "FLUSH")
        assert f.cmd("FUNCTION", "LOAD", "#!lua name=cl\nredis.register_function('push', "
                     "function(keys, args) return redis.call('rpush', keys[1], args[1]) "
                     "end)") == b"cl"
    for i, p in enumerate(cluster.ports):
        with RawConn(p) as c:
            assert c.cmd("FCALL", "push", 1, "fl", i) == i + 1
    for p in cluster.ports:
        wait_for(lambda: _replica(p, "LRANGE", "fl", 0, -1) == [b"0", b"1", b"2"], 10,
                 "replica %d to apply FCALL" % p)
        assert _replica(p, "FUNCTION", "LIST")[0][1] == b"cl"


@pytest.mark.halyard_only
def test_moved_mode_redirects_scripts(tmp_path_factory):
    """With redirect moved a follower answers -MOVED for EVAL and FCALL; the leader runs
    them."""
    c = Cluster(tmp_path_factory, 3, extra={"redirect": "moved"})
    c.start_all()
    try:
        li = c.leader()
        fi = (li + 1) % 3
        wait_for(lambda: info(c.ports[fi])["raft_leader"] != "", 10, "the follower")
        with RawConn(c.ports[fi]) as f:
            moved = f.cmd("EVAL", "return redis.call('set', KEYS[1], 'x')", 1, "mk")
            assert moved.startswith("MOVED ") and moved.endswith(":%d" % c.ports[li]), moved
        with RawConn(c.ports[li]) as l:
            assert l.cmd("EVAL", "return redis.call('set', KEYS[1], 'x')", 1, "mk") == "OK"
        for p in c.ports:
            wait_for(lambda: _replica(p, "GET", "mk") == b"x", 10, "replica %d" % p)
    finally:
        errors = c.stop_all()
    assert not errors, errors


# ---- a partitioned cluster ---------------------------------------------------------------------


def _slots_view(port):
    with RawConn(port) as r:
        return sorted((e[0], e[1], e[2][1]) for e in r.cmd("CLUSTER", "SLOTS"))


def _leader_port_of(port, key):
    with RawConn(port) as c:
        slot = c.cmd("CLUSTER", "KEYSLOT", key)
    for lo, hi, p in _slots_view(port):
        if lo <= slot <= hi:
            return p
    return None


@pytest.mark.halyard_only
def test_partitioned_cluster_scripts(tmp_path_factory):
    """With 4 partitions: a script's KEYS must be in one partition (-CROSSSLOT); a command
    inside on a key of another partition is refused; SCRIPT LOAD and FUNCTION LOAD reach every
    partition, so EVALSHA and FCALL work for keys of any partition, through any node; every
    replica holds the same values."""
    c = Cluster(tmp_path_factory, 3, {"partitions": 4})
    c.start_all()
    try:
        ports = c.ports
        wait_for(lambda: all(len(_slots_view(p)) >= 4 and _slots_view(p) == _slots_view(ports[0])
                             for p in ports), 30, "every partition to have a leader")
        keys = []
        with RawConn(ports[0]) as r:
            seen = set()
            for i in range(2000):
                k = "pk%d" % i
                part = r.cmd("CLUSTER", "KEYSLOT", k) * 4 // 16384
                if part not in seen:
                    seen.add(part)
                    keys.append(k)
                if len(seen) == 4:
                    break
        assert len(keys) == 4
        with RawConn(ports[1]) as r:
            assert r.cmd("EVAL", "return 1", 2, keys[0], keys[1]) == CROSSSLOT
            err = r.cmd("EVAL", "return redis.call('set', ARGV[1], 'x')", 1, keys[0], keys[1])
            assert "non local key" in err, err
            sha = r.cmd("SCRIPT", "LOAD", "return redis.call('incr', KEYS[1])").decode()
            assert r.cmd("FUNCTION", "LOAD", "#!lua name=pl\nredis.register_function('pf', "
                         "function(keys) return redis.call('incrby', keys[1], 10) end)") == b"pl"
            assert r.cmd("EVAL", "return 'nokeys'", 0) == b"nokeys"
        for i, k in enumerate(keys):
            lead = _leader_port_of(ports[0], k)
            follower = next(p for p in ports if p != lead)
            for p in (lead, follower):
                with RawConn(p) as r:
                    assert r.cmd("EVALSHA", sha, 1, k) in (1, 12)
                    assert r.cmd("FCALL", "pf", 1, k) in (11, 22)
        for k in keys:
            for p in ports:
                wait_for(lambda: _replica(p, "GET", k) == b"22", 10,
                         "replica %d of %s's partition" % (p, k))
        with RawConn(ports[2]) as r:
            assert r.cmd("SCRIPT", "FLUSH") == "OK"
            for k in keys:
                assert r.cmd("EVALSHA", sha, 1, k) == NOSCRIPT
            dump = r.cmd("FUNCTION", "DUMP")
            assert r.cmd("FUNCTION", "DELETE", "pl") == "OK"
            assert r.cmd("FCALL", "pf", 1, keys[0]) == "ERR Function not found"
            assert r.cmd("FUNCTION", "RESTORE", dump) == "OK"  # every partition again
        for k in keys:
            with RawConn(_leader_port_of(ports[0], k)) as r:
                assert r.cmd("FCALL", "pf", 1, k) == 32
    finally:
        errors = c.stop_all()
    assert not errors, errors


@pytest.mark.halyard_only
def test_library_reads_on_a_follower_see_the_clients_writes(tmp_path_factory):
    """FUNCTION LIST, DUMP and STATS and SCRIPT EXISTS sent to a follower run where reads run
    (the leader, after ReadIndex), so they see every acknowledged FUNCTION/SCRIPT write, as a
    GET sees acknowledged SETs. The follower here hears nothing from its leader (that link is
    cut), so its own replica still holds the library and the script (a READONLY connection shows
    it): a read answered from that replica would show them; answered by the leader, it shows the
    flush."""
    from fault_proxy import leader_and_follower, send_then_heal

    with leader_and_follower(tmp_path_factory) as (c, li, fi):
        lport, fport = c.ports[li], c.ports[fi]
        with RawConn(lport) as l:
            assert l.cmd("FUNCTION", "LOAD", "#!lua name=old\nredis.register_function('f', "
                         "function() return 1 end)") == b"old"
            sha = l.cmd("SCRIPT", "LOAD", "return 7").decode()
        wait_for(lambda: _replica(fport, "FUNCTION", "LIST") != [] and
                 _replica(fport, "SCRIPT", "EXISTS", sha) == [1], 30,
                 "the follower to apply the library and the script")
        # The follower stops hearing its leader; the flushes commit with the other follower.
        c.net.block(li, fi)
        with RawConn(lport) as l:
            assert l.cmd("FUNCTION", "FLUSH") == "OK"
            assert l.cmd("SCRIPT", "FLUSH") == "OK"
        assert _replica(fport, "FUNCTION", "LIST")[0][1] == b"old"  # the stale replica
        with RawConn(fport, timeout=60) as f:
            send_then_heal(c, f, fport, ("FUNCTION", "LIST"), ("FUNCTION", "DUMP"),
                           ("SCRIPT", "EXISTS", sha), ("FUNCTION", "STATS"))
            assert f.read() == []
            with RawConn(lport) as l:
                assert f.read() == l.cmd("FUNCTION", "DUMP")
            assert f.read() == [0]
            assert f.read()[3] == [b"LUA", [b"libraries_count", 0, b"functions_count", 0]]

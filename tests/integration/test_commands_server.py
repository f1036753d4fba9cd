"""Connection and server commands: PING ECHO HELLO AUTH SELECT QUIT RESET COMMAND INFO CLIENT CONFIG."""

import subprocess

import pytest
import redis

from conftest import IS_REDIS, RawConn, RespError, info_dict, wait_for

NOT_INT = "ERR value is not an integer or out of range"

REQUIRED_COMMANDS = """ping echo hello auth select quit reset command info client config dbsize flushall
flushdb keys scan exists del unlink type rename renamenx expire pexpire expireat pexpireat expiretime
pexpiretime ttl pttl persist get set setnx setex psetex getset getdel getex mget mset msetnx append
strlen getrange setrange incr decr incrby decrby incrbyfloat hset hget hmget hmset hdel hexists hlen
hstrlen hgetall hkeys hvals hincrby hincrbyfloat hsetnx hrandfield hscan""".split()


def arity(cmd):
    return "ERR wrong number of arguments for '%s' command" % cmd


def test_ping_echo(raw):
    """PING answers PONG or echoes its argument; ECHO echoes; extra args are arity errors."""
    assert raw.cmd("PING") == "PONG"
    assert raw.cmd("PING", "hello world") == b"hello world"
    assert raw.cmd("PING", "a", "b") == arity("ping")
    assert raw.cmd("ECHO", "x\r\ny") == b"x\r\ny"
    assert raw.cmd("ECHO", "") == b""
    assert raw.cmd("ECHO") == arity("echo")
    assert raw.cmd("ECHO", "a", "b") == arity("echo")


def test_ping_exact_bytes(raw):
    """PING's reply is exactly +PONG\\r\\n and an inline PING works too."""
    raw.send(b"*1\r\n$4\r\nPING\r\n")
    assert raw.read_raw_line() == b"+PONG"
    raw.send(b"PING\r\n")
    assert raw.read_raw_line() == b"+PONG"
    raw.send(b"ECHO hi\r\n")
    assert raw.read_raw_line() == b"$2"
    assert raw.read_raw_line() == b"hi"


def test_unknown_command(raw):
    """An unknown command answers Redis's exact text, quoting up to the first arguments."""
    assert raw.cmd("NOSUCHCMD") == "ERR unknown command 'NOSUCHCMD', with args beginning with: "
    assert raw.cmd("foo", "a", "b") == "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    assert raw.cmd("PING") == "PONG"  # the connection stays usable


def test_unknown_subcommand(raw):
    """Unknown subcommands of CLIENT/CONFIG/COMMAND answer the exact 'Try X HELP.' error."""
    assert raw.cmd("CLIENT", "foo") == "ERR unknown subcommand 'foo'. Try CLIENT HELP."
    assert raw.cmd("CONFIG", "foo") == "ERR unknown subcommand 'foo'. Try CONFIG HELP."
    assert raw.cmd("COMMAND", "foo") == "ERR unknown subcommand 'foo'. Try COMMAND HELP."
    assert raw.cmd("CLIENT") == arity("client")
    assert raw.cmd("CONFIG") == arity("config")
    assert raw.cmd("CLIENT", "SETNAME") == arity("client|setname")
    assert raw.cmd("CONFIG", "GET") == arity("config|get")
    assert raw.cmd("CONFIG", "SET", "maxmemory") == arity("config|set")


def test_select(raw):
    """SELECT 0 is OK; a non-integer or out-of-range index is an exact error."""
    assert raw.cmd("SELECT", "0") == "OK"
    assert raw.cmd("SELECT", "x") == NOT_INT
    assert raw.cmd("SELECT", "99999") == "ERR DB index is out of range"
    assert raw.cmd("SELECT", "-1") == "ERR DB index is out of range"
    assert raw.cmd("SELECT") == arity("select")


@pytest.mark.halyard_only
def test_select_nonzero_refused(raw):
    """halyard has one database: SELECT 1 is refused with Redis's out-of-range error."""
    assert raw.cmd("SELECT", "1") == "ERR DB index is out of range"
    assert raw.cmd("SET", "k", "v") == "OK"
    assert raw.cmd("GET", "k") == b"v"


def test_quit(raw):
    """QUIT answers +OK and then the server closes the connection."""
    raw.send(b"*1\r\n$4\r\nQUIT\r\n")
    assert raw.read_raw_line() == b"+OK"
    assert raw.recv_until_closed() == b""


def test_quit_after_pipeline(raw):
    """Replies to commands pipelined before QUIT are all delivered before the close."""
    raw.send(RawConn.encode("SET", "k", "v") + RawConn.encode("GET", "k") + RawConn.encode("QUIT") + RawConn.encode("PING"))
    assert raw.recv_until_closed() == b"+OK\r\n$1\r\nv\r\n+OK\r\n"


def test_hello_resp2(raw):
    """HELLO 2 answers the server map as a flat array with proto 2, id, mode and role."""
    reply = raw.cmd("HELLO", "2")
    assert isinstance(reply, list), reply
    m = dict(zip(reply[::2], reply[1::2]))
    for k in (b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"):
        assert k in m, (k, m)
    assert m[b"proto"] == 2
    assert m[b"mode"] == b"standalone"
    assert m[b"role"] == b"master"
    assert m[b"id"] == raw.cmd("CLIENT", "ID")
    assert m[b"modules"] == []


def test_hello_errors(raw):
    """HELLO rejects unsupported or malformed protocol versions with exact errors."""
    assert raw.cmd("HELLO", "4") == "NOPROTO unsupported protocol version"
    assert raw.cmd("HELLO", "1") == "NOPROTO unsupported protocol version"
    assert raw.cmd("HELLO", "abc") == "ERR Protocol version is not an integer or out of range"
    assert raw.cmd("HELLO", "3", "BOGUS") == "ERR Syntax error in HELLO option 'BOGUS'"
    assert raw.cmd("PING") == "PONG"


def test_hello_setname(raw):
    """HELLO 2 SETNAME sets the connection name."""
    raw.cmd("HELLO", "2", "SETNAME", "conn-a")
    assert raw.cmd("CLIENT", "GETNAME") == b"conn-a"


def test_auth_without_password(raw):
    """AUTH with no requirepass configured answers Redis's exact error."""
    assert raw.cmd("AUTH", "x") == (
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?"
    )
    assert raw.cmd("AUTH") == arity("auth")


def test_requirepass(servers):
    """With requirepass: commands need AUTH, wrong passwords get WRONGPASS, right ones unlock."""
    s = servers.start({"requirepass": "s3cret"})
    with s.raw() as c:
        assert c.cmd("GET", "k") == "NOAUTH Authentication required."
        assert c.cmd("SET", "k", "v") == "NOAUTH Authentication required."
        assert c.cmd("AUTH", "wrong") == "WRONGPASS invalid username-password pair or user is disabled."
        assert c.cmd("AUTH", "default", "wrong") == "WRONGPASS invalid username-password pair or user is disabled."
        assert c.cmd("HELLO", "3").startswith("NOAUTH HELLO must be called with the client already authenticated")
        assert c.cmd("AUTH", "s3cret") == "OK"
        assert c.cmd("SET", "k", "v") == "OK"
        # RESET drops the authentication again.
        assert c.cmd("RESET") == "RESET"
        assert c.cmd("GET", "k") == "NOAUTH Authentication required."
        assert c.cmd("AUTH", "default", "s3cret") == "OK"
        assert c.cmd("GET", "k") == b"v"
    with s.raw() as c:
        m = c.cmd("HELLO", "3", "AUTH", "default", "s3cret")
        assert isinstance(m, dict) and m[b"proto"] == 3
        assert c.cmd("GET", "k") == b"v"
    with s.raw() as c:
        assert c.cmd("HELLO", "2", "AUTH", "default", "bad") == "WRONGPASS invalid username-password pair or user is disabled."
    cl = s.client(password="s3cret")
    assert cl.get("k") == "v"
    cl.close()
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)) as e:
        s.client(password="bad").ping()
    assert "WRONGPASS" in str(e.value) or "invalid" in str(e.value)
    out = subprocess.run(["redis-cli", "-p", str(s.port), "-a", "s3cret", "--no-auth-warning", "GET", "k"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "v", out


def test_config_set_requirepass(servers):
    """CONFIG SET requirepass applies to new connections; clearing it opens the server again."""
    s = servers.start()
    with s.raw() as admin:
        assert admin.cmd("CONFIG", "SET", "requirepass", "pw") == "OK"
        # Redis shows the password; halyard never shows a secret (issue 20, item 3).
        shown = b"pw" if IS_REDIS else b"(redacted)"
        assert admin.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", shown]
        with s.raw() as c:
            assert c.cmd("PING") == "NOAUTH Authentication required."
            assert c.cmd("AUTH", "pw") == "OK"
            assert c.cmd("PING") == "PONG"
        assert admin.cmd("AUTH", "pw") == "OK"
        assert admin.cmd("CONFIG", "SET", "requirepass", "") == "OK"
        with s.raw() as c:
            assert c.cmd("PING") == "PONG"


def test_reset(raw):
    """RESET answers +RESET and restores name, protocol 2 and a fresh state."""
    raw.cmd("CLIENT", "SETNAME", "n1")
    assert isinstance(raw.cmd("HELLO", "3"), dict)
    raw.send(RawConn.encode("GET", "missing"))
    assert raw.read_raw_line() == b"_"
    assert raw.cmd("RESET") == "RESET"
    assert raw.cmd("CLIENT", "GETNAME") is None
    raw.send(RawConn.encode("GET", "missing"))
    assert raw.read_raw_line() == b"$-1"


def test_command_count_and_list(raw):
    """COMMAND COUNT equals the number of top-level names in COMMAND LIST, which holds every supported command."""
    count = raw.cmd("COMMAND", "COUNT")
    names = raw.cmd("COMMAND", "LIST")
    lower = {n.decode().lower() for n in names}
    top = {n for n in lower if "|" not in n}  # Redis 7 lists subcommands as 'config|get'
    assert isinstance(count, int) and count == len(top)
    missing = [c for c in REQUIRED_COMMANDS if c not in lower]
    assert not missing, missing
    full = raw.cmd("COMMAND")
    assert len(full) == count


def test_command_info(raw):
    """COMMAND INFO gives name, arity and key positions as Redis's table does."""
    info = raw.cmd("COMMAND", "INFO", "get", "set", "mget", "hset", "nosuchcmd")
    assert len(info) == 5
    get, set_, mget, hset, none = info
    assert none is None
    assert get[:2] == [b"get", 2] and get[3:6] == [1, 1, 1]
    assert set_[:2] == [b"set", -3] and set_[3:6] == [1, 1, 1]
    assert mget[:2] == [b"mget", -2] and mget[3:6] == [1, -1, 1]
    assert hset[:2] == [b"hset", -4] and hset[3:6] == [1, 1, 1]
    assert "write" in set_[2] and "readonly" in get[2]
    assert {"@read", "@string", "@fast"} <= set(get[6]) and "@write" not in get[6]
    assert {"@write", "@string", "@slow"} <= set(set_[6])  # ACL categories, as Redis files them
    ping = raw.cmd("COMMAND", "INFO", "PING")[0]
    assert ping[:2] == [b"ping", -1] and ping[3:6] == [0, 0, 0]


def test_command_docs(raw):
    """COMMAND DOCS returns a summary for the requested command."""
    docs = raw.cmd("COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and len(docs) == 2 and docs[0] == b"get", docs
    d = dict(zip(docs[1][::2], docs[1][1::2]))
    assert isinstance(d.get(b"summary"), bytes) and d[b"summary"]


def test_info_sections(raw):
    """INFO contains the server, clients, memory, stats, replication and keyspace sections."""
    raw.cmd("SET", "a", "1")
    raw.cmd("SET", "b", "2", "EX", "100")
    text = raw.cmd("INFO").decode()
    for section in ("# Server", "# Clients", "# Memory", "# Stats", "# Replication", "# Keyspace"):
        assert section in text, section
    assert "\r\n" in text
    i = info_dict(raw)
    assert i["redis_version"]
    assert int(i["tcp_port"]) > 0
    assert int(i["connected_clients"]) >= 1
    assert int(i["used_memory"]) > 0
    assert int(i["total_commands_processed"]) >= 2
    assert i["role"] == "master"
    assert i["db0"].startswith("keys=2,expires=1,")


def test_info_single_section(raw):
    """INFO <section> returns only that section; section names are case-insensitive."""
    text = raw.cmd("INFO", "memory").decode()
    assert text.startswith("# Memory")
    assert "used_memory:" in text and "# Server" not in text
    text = raw.cmd("INFO", "CLIENTS").decode()
    assert "connected_clients:" in text and "used_memory:" not in text
    assert "redis_version:" in raw.cmd("INFO", "server").decode()
    assert "role:master" in raw.cmd("INFO", "replication").decode()
    assert "total_commands_processed:" in raw.cmd("INFO", "stats").decode()


def test_info_keyspace_tracks_keys(raw):
    """INFO keyspace reports db0 keys/expires and omits db0 when the keyspace is empty."""
    assert "db0:" not in raw.cmd("INFO", "keyspace").decode()
    raw.cmd("MSET", "a", "1", "b", "2", "c", "3")
    raw.cmd("EXPIRE", "a", "100")
    raw.cmd("HSET", "h", "f", "v")
    assert info_dict(raw, "keyspace")["db0"].startswith("keys=4,expires=1,avg_ttl=")


def test_info_connected_clients(srv):
    """connected_clients counts open connections."""
    with srv.raw() as a:
        base = int(info_dict(a, "clients")["connected_clients"])
        conns = [srv.raw() for _ in range(5)]
        for c in conns:
            assert c.cmd("PING") == "PONG"
        assert int(info_dict(a, "clients")["connected_clients"]) == base + 5
        for c in conns:
            c.close()
        wait_for(lambda: int(info_dict(a, "clients")["connected_clients"]) == base, 10, "clients to be counted as gone")


def test_client_setname_getname_id(srv):
    """CLIENT SETNAME/GETNAME round-trip; CLIENT ID is unique per connection and increasing."""
    with srv.raw() as a, srv.raw() as b:
        assert a.cmd("CLIENT", "GETNAME") is None
        assert a.cmd("CLIENT", "SETNAME", "alpha") == "OK"
        assert a.cmd("CLIENT", "GETNAME") == b"alpha"
        assert b.cmd("CLIENT", "GETNAME") is None
        assert a.cmd("CLIENT", "SETNAME", "bad name") == "ERR Client names cannot contain spaces, newlines or special characters."
        assert a.cmd("CLIENT", "SETNAME", "") == "OK"
        assert a.cmd("CLIENT", "GETNAME") is None
        ida, idb = a.cmd("CLIENT", "ID"), b.cmd("CLIENT", "ID")
        assert isinstance(ida, int) and isinstance(idb, int) and ida != idb
        with srv.raw() as c:
            assert c.cmd("CLIENT", "ID") > max(ida, idb)


def parse_client_line(line):
    return dict(kv.split("=", 1) for kv in line.strip().split(" "))


def test_client_list_and_info(srv):
    """CLIENT LIST has one line per connection with id, addr and name; CLIENT INFO describes the caller."""
    with srv.raw() as a, srv.raw() as b:
        a.cmd("CLIENT", "SETNAME", "alpha")
        ida = a.cmd("CLIENT", "ID")
        idb = b.cmd("CLIENT", "ID")
        lines = [parse_client_line(x) for x in b.cmd("CLIENT", "LIST").decode().splitlines() if x]
        by_id = {int(x["id"]): x for x in lines}
        assert ida in by_id and idb in by_id
        assert by_id[ida]["name"] == "alpha"
        assert by_id[ida]["addr"] == "127.0.0.1:%d" % a.sock.getsockname()[1]
        assert by_id[idb]["name"] == ""
        info = parse_client_line(a.cmd("CLIENT", "INFO").decode())
        assert int(info["id"]) == ida and info["name"] == "alpha"
        assert info["addr"] == "127.0.0.1:%d" % a.sock.getsockname()[1]


@pytest.mark.halyard_only
def test_query_buffer_is_resized(srv):
    """A client's query buffer (CLIENT LIST qbuf + qbuf-free) is freed once the client is idle
    over 2 s, and cut back after a large request once smaller ones follow, as Redis resizes it
    (Redis's querybuf unit)."""
    with srv.raw() as admin, srv.raw() as c:
        c.cmd("CLIENT", "SETNAME", "qb")

        def qbuf():
            for line in admin.cmd("CLIENT", "LIST").decode().splitlines():
                f = parse_client_line(line)
                if f["name"] == "qb":
                    return int(f["qbuf"]) + int(f["qbuf-free"])
        assert 0 < qbuf() < 32768
        wait_for(lambda: qbuf() == 0, 10, "the idle client's query buffer to be freed")
        assert c.cmd("SET", "qbx", "A" * 400000) == "OK"
        big = qbuf()
        assert big > 400000

        def shrunk():
            assert c.cmd("SET", "qbx", "A") == "OK"
            return 0 < qbuf() < big
        wait_for(shrunk, 10, "the query buffer to shrink after smaller requests")


def test_client_kill(srv):
    """CLIENT KILL by ID, by ADDR and by old-style addr disconnects exactly that client."""
    with srv.raw() as admin:
        victims = [srv.raw() for _ in range(3)]
        try:
            ids = [v.cmd("CLIENT", "ID") for v in victims]
            assert admin.cmd("CLIENT", "KILL", "ID", str(ids[0])) == 1
            assert victims[0].recv_until_closed() == b""
            addr1 = "127.0.0.1:%d" % victims[1].sock.getsockname()[1]
            assert admin.cmd("CLIENT", "KILL", "ADDR", addr1) == 1
            assert victims[1].recv_until_closed() == b""
            addr2 = "127.0.0.1:%d" % victims[2].sock.getsockname()[1]
            assert admin.cmd("CLIENT", "KILL", addr2) == "OK"
            assert victims[2].recv_until_closed() == b""
            assert admin.cmd("CLIENT", "KILL", "ID", "999999") == 0
            assert admin.cmd("CLIENT", "KILL", "1.2.3.4:5") == "ERR No such client"
            assert admin.cmd("CLIENT", "KILL", "ID", "abc") == "ERR client-id should be greater than 0"
            assert admin.cmd("PING") == "PONG"
        finally:
            for v in victims:
                v.close()


def test_config_get(raw):
    """CONFIG GET returns name/value pairs for the supported parameters and nothing for unknown ones."""
    for name in ("maxmemory", "maxmemory-policy", "maxclients", "timeout", "requirepass"):
        reply = raw.cmd("CONFIG", "GET", name)
        assert isinstance(reply, list) and len(reply) == 2 and reply[0] == name.encode(), (name, reply)
    assert raw.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    assert raw.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"0"]
    assert raw.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
    assert raw.cmd("CONFIG", "GET", "nosuchparam") == []
    both = raw.cmd("CONFIG", "GET", "maxmemory", "timeout")
    assert dict(zip(both[::2], both[1::2])) == {b"maxmemory": b"0", b"timeout": b"0"}


def test_config_set(servers):
    """CONFIG SET changes maxmemory (with units), policy, maxclients and timeout, visible via CONFIG GET."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("CONFIG", "SET", "maxmemory", "10mb") == "OK"
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "1gb") == "OK"
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"1073741824"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "12345") == "OK"
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"12345"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
        for policy in ("allkeys-lru", "volatile-lru", "noeviction"):
            assert c.cmd("CONFIG", "SET", "maxmemory-policy", policy) == "OK"
            assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", policy.encode()]
        assert c.cmd("CONFIG", "SET", "maxclients", "100") == "OK"
        assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"100"]
        assert c.cmd("CONFIG", "SET", "timeout", "300") == "OK"
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"300"]
        assert c.cmd("CONFIG", "SET", "timeout", "0") == "OK"


def test_config_set_errors(servers):
    """CONFIG SET rejects unknown parameters and bad values with Redis's exact messages."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("CONFIG", "SET", "nosuchparam", "1") == "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'"
        e = c.cmd("CONFIG", "SET", "maxmemory-policy", "bogus")
        assert isinstance(e, RespError)
        assert e.startswith("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: ")
        assert c.cmd("CONFIG", "SET", "maxmemory", "abc") == "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        assert c.cmd("CONFIG", "SET", "maxclients", "abc") == "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
        assert c.cmd("CONFIG", "SET", "timeout", "-1") == "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive"
        assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"0"]


def test_config_resetstat(servers):
    """CONFIG RESETSTAT zeroes the command counters in INFO stats."""
    s = servers.start()
    with s.raw() as c:
        for i in range(50):
            c.cmd("SET", "k%d" % i, "v")
        assert int(info_dict(c, "stats")["total_commands_processed"]) >= 50
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        assert int(info_dict(c, "stats")["total_commands_processed"]) <= 2


def test_redis_py_server_helpers(r):
    """python3-redis's ping/echo/info/client helpers parse the server's replies."""
    assert r.ping() is True
    assert r.echo("hi") == "hi"
    info = r.info()
    assert "redis_version" in info and "used_memory" in info and "connected_clients" in info
    assert r.client_setname("py") is True
    assert r.client_getname() == "py"
    assert isinstance(r.client_id(), int)
    assert any(c.get("name") == "py" for c in r.client_list())
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.dbsize() == 0


def test_auth_syntax(raw):
    """AUTH with three arguments is a syntax error."""
    assert raw.cmd("AUTH", "a", "b", "c") == "ERR syntax error"


def test_client_kill_self(srv):
    """CLIENT KILL skips the caller by default (SKIPME yes); with SKIPME no it replies 1 and closes it."""
    with srv.raw() as c:
        me = c.cmd("CLIENT", "ID")
        assert c.cmd("CLIENT", "KILL", "ID", str(me)) == 0
        assert c.cmd("PING") == "PONG"
        c.send(c.encode("CLIENT", "KILL", "ID", str(me), "SKIPME", "no"))
        assert c.recv_until_closed() == b":1\r\n"


def test_config_get_glob(raw):
    """CONFIG GET accepts a glob pattern and returns every matching parameter."""
    reply = raw.cmd("CONFIG", "GET", "maxmemory*")
    got = dict(zip(reply[::2], reply[1::2]))
    for name in (b"maxmemory", b"maxmemory-policy", b"maxmemory-samples"):
        assert name in got, (name, got)
    assert all(k.startswith(b"maxmemory") for k in got)


def test_config_set_multiple_is_atomic(servers):
    """CONFIG SET with several parameters applies all of them, or none when one is invalid."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("CONFIG", "SET", "maxmemory", "1mb", "timeout", "5") == "OK"
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"5"]
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"1048576"]
        e = c.cmd("CONFIG", "SET", "maxmemory", "2mb", "timeout", "-1")
        assert isinstance(e, RespError) and e.startswith("ERR CONFIG SET failed"), e
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"1048576"]
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"5"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "0", "timeout", "0") == "OK"


def test_info_multiple_sections_and_all(raw):
    """INFO accepts several section names and 'all'/'everything'."""
    text = raw.cmd("INFO", "server", "clients").decode()
    headers = [l for l in text.splitlines() if l.startswith("#")]
    assert headers == ["# Server", "# Clients"], headers
    for arg in ("all", "everything", "default"):
        text = raw.cmd("INFO", arg).decode()
        for section in ("# Server", "# Clients", "# Memory", "# Stats", "# Replication", "# Keyspace"):
            assert section in text, (arg, section)


def test_errorstats_and_total_error_replies(raw):
    """Every error reply is counted by its first word (INFO errorstats) and in
    total_error_replies, whether it was answered at once or when its write applied; CONFIG
    RESETSTAT clears both, as Redis's."""
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert raw.cmd("SET", "s", "v") == "OK"
    assert raw.cmd("LPUSH", "s", "a").startswith("WRONGTYPE")  # a write: replied at apply
    assert raw.cmd("HGET", "s", "f").startswith("WRONGTYPE")  # a read: replied at once
    assert raw.cmd("NOSUCHCOMMAND").startswith("ERR unknown command")
    assert raw.cmd("INCR", "a", "b").startswith("ERR wrong number of arguments")
    stats = info_dict(raw, "errorstats")
    assert stats["errorstat_WRONGTYPE"] == "count=2"
    assert stats["errorstat_ERR"] == "count=2"
    assert info_dict(raw, "stats")["total_error_replies"] == "4"
    assert "errorstat_ERR" in info_dict(raw)  # in the default sections, as Redis's
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert "errorstat_ERR" not in info_dict(raw, "errorstats")
    assert info_dict(raw, "stats")["total_error_replies"] == "0"


def test_commandstats(srv, raw):
    """INFO commandstats counts as Redis 7.0: calls; rejected_calls, refused before running
    (arity); failed_calls, run and answered an error, at once or when the write applied; EXEC
    under its own name; a container's subcommands apart (config|get); a blocked command once,
    when answered. It is not in plain INFO, and CONFIG RESETSTAT clears it."""
    def stat(name):
        return info_dict(raw, "commandstats").get("cmdstat_" + name)
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert stat("set") is None
    assert raw.cmd("SET", "cs", "v") == "OK"
    assert raw.cmd("LPUSH", "cs", "a").startswith("WRONGTYPE")  # a write: failed at apply
    assert raw.cmd("HGET", "cs", "f").startswith("WRONGTYPE")  # a read: failed at once
    assert raw.cmd("GET").startswith("ERR wrong number of arguments")  # rejected
    assert raw.cmd("GET", "cs") == b"v"
    raw.cmd("CONFIG", "GET", "maxmemory")
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("INCR", "csn") == "QUEUED"
    assert raw.cmd("EXEC") == [1]
    raw.cmd("DEL", "csl")
    with srv.raw() as b:
        b.send(RawConn.encode("BLPOP", "csl", 0))
        wait_for(lambda: b"blocked_clients:1" in raw.cmd("INFO", "clients"), 10,
                 "BLPOP to block")
        assert raw.cmd("RPUSH", "csl", "x") == 1
        assert b.read() == [b"csl", b"x"]
    assert stat("set").startswith("calls=1,usec=")
    assert stat("set").endswith(",rejected_calls=0,failed_calls=0")
    assert stat("lpush").endswith(",rejected_calls=0,failed_calls=1")
    assert stat("hget").endswith(",rejected_calls=0,failed_calls=1")
    assert stat("get").startswith("calls=1,")
    assert stat("get").endswith(",rejected_calls=1,failed_calls=0")
    assert stat("config|get").startswith("calls=1,")
    assert stat("exec").startswith("calls=1,") and stat("multi").startswith("calls=1,")
    assert stat("blpop").startswith("calls=1,")
    assert all(k.startswith("cmdstat_") and v.startswith("calls=")
               for k, v in info_dict(raw, "commandstats").items())
    assert "cmdstat_set" not in info_dict(raw)  # asked for by name, "all" or "everything"
    assert "cmdstat_set" in info_dict(raw, "everything")
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert stat("set") is None


def test_commandstats_count_commands_inside_multi_and_scripts(srv, raw):
    """As Redis 7.0 (introspection-2's "command stats for MULTI" and "for scripts", which an
    external run skips): each command a transaction or a script runs counts one call under its
    own name, besides EXEC's and EVAL's; one a script calls that answers an error is failed."""
    def stat(name):
        return info_dict(raw, "commandstats").get("cmdstat_" + name)
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("SET", "foo{t}", "bar") == "QUEUED"
    assert raw.cmd("GEOADD", "foo2{t}", 0, 0, "bar") == "QUEUED"
    assert raw.cmd("EXPIRE", "foo2{t}", 0) == "QUEUED"
    assert raw.cmd("EXEC") == ["OK", 1, 1]
    for name in ("multi", "exec", "set", "expire", "geoadd"):
        assert (stat(name) or "").startswith("calls=1,"), (name, stat(name))
    assert stat("zadd") is None and stat("del") is None
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    assert raw.cmd("SET", "mykey", "myval") == "OK"
    assert raw.cmd("EVAL", "redis.call('set', KEYS[1], 0) redis.call('expire', KEYS[1], 0) "
                   "redis.call('geoadd', KEYS[1], 0, 0, 'bar') "
                   "return redis.pcall('lpush', KEYS[1], 'x')", 1, "mykey").startswith("WRONGTYPE")
    assert stat("eval").startswith("calls=1,")
    assert stat("set").startswith("calls=2,")
    for name in ("expire", "geoadd", "lpush"):
        assert (stat(name) or "").startswith("calls=1,"), (name, stat(name))
    assert stat("lpush").endswith(",failed_calls=1")  # the key is a sorted set by then
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"


@pytest.mark.halyard_only
def test_save_and_shutdown(servers):
    """SAVE snapshots the node's partitions and answers OK; SAVE and SHUTDOWN are refused
    inside MULTI (the transaction then aborts) and from scripts, as Redis's no-multi and
    no-script commands; SHUTDOWN ABORT without a shutdown is an error; SHUTDOWN NOSAVE closes
    the connection without a reply and the node exits 0, as HALYARD DRAIN."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("SAVE") == "OK"
        for cmd in ("SAVE", "SHUTDOWN"):
            assert c.cmd("MULTI") == "OK"
            assert c.cmd("SET", "k", "w") == "QUEUED"
            assert c.cmd(cmd) == "ERR Command not allowed inside a transaction"
            assert c.cmd("EXEC").startswith("EXECABORT")
        assert c.cmd("GET", "k") == b"v"
        assert "not allowed from script" in c.cmd("EVAL", "return redis.call('shutdown')", 0)
        assert c.cmd("SHUTDOWN", "ABORT") == "ERR No shutdown in progress."
        assert c.cmd("SHUTDOWN", "NOSAVE", "BAD") == "ERR syntax error"
        c.send(RawConn.encode("SHUTDOWN", "NOSAVE"))
        assert c.recv_until_closed() == b""
    assert s.wait_exit() == 0, s.log_tail()


@pytest.mark.halyard_only
def test_min_replicas_to_write(servers):
    """min-replicas-to-write refuses writes with Redis's -NOREPLICAS while too few replicas
    answer the leader (a single node has none): reads go on, a no-writes script runs, a
    script declaring it may write is refused before it runs, one without a shebang when it
    writes; 0 lets writes in again."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("SET", "x", "v") == "OK"
        assert c.cmd("CONFIG", "SET", "min-replicas-to-write", 1) == "OK"
        assert c.cmd("CONFIG", "GET", "min-replicas-to-write") == [b"min-replicas-to-write", b"1"]
        assert c.cmd("SET", "x", "w") == "NOREPLICAS Not enough good replicas to write."
        assert c.cmd("GET", "x") == b"v"
        assert c.cmd("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", 1, "x") == b"v"
        assert c.cmd("EVAL", "return redis.call('get','x')", 1, "x") == b"v"
        assert c.cmd("EVAL", "#!lua\nreturn redis.call('get','x')", 1, "x") == \
            "NOREPLICAS Not enough good replicas to write."
        assert c.cmd("EVAL", "return redis.call('set','x', 1)", 1, "x").startswith(
            "NOREPLICAS Not enough good replicas to write.")
        assert c.cmd("CONFIG", "SET", "min-replicas-to-write", 0) == "OK"
        assert c.cmd("SET", "x", "w") == "OK"


def test_dirty_counter_counts_bit_changes_as_redis(raw):
    """rdb_changes_since_last_save grows by one per write, and SETBIT/BITFIELD count only when
    bits changed or the string was created or grown (Redis's bitops test)."""
    def dirty():
        return int(info_dict(raw, "persistence")["rdb_changes_since_last_save"])
    d0 = dirty()
    raw.cmd("SETBIT", "foo", 0, 0)
    raw.cmd("BITFIELD", "foo2", "SET", "i5", 0, 0)
    assert dirty() == d0 + 2  # created
    raw.cmd("SETBIT", "foo", 0, 0)
    raw.cmd("BITFIELD", "foo2", "SET", "i5", 0, 0)
    assert dirty() == d0 + 2  # no change
    raw.cmd("SETBIT", "foo", 0, 1)
    raw.cmd("SETBIT", "foo", 0, 1)
    raw.cmd("BITFIELD", "foo2", "SET", "i5", 0, 1)
    raw.cmd("BITFIELD", "foo2", "INCRBY", "i5", 0, 0)  # INCRBY always counts
    raw.cmd("SETBIT", "foo", 90, 0)  # grown
    assert dirty() == d0 + 6
    raw.cmd("SET", "k", "v")
    assert raw.cmd("LPUSH", "k", "x").startswith("WRONGTYPE")  # counts nothing
    assert dirty() == d0 + 7

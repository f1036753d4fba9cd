"""MIGRATE (docs/protocol.md "MIGRATE"): keys move to a Debian redis-server started here, and
to a second halyard, as Redis 7.0 moves them (DUMP here, RESTORE there, DEL unless COPY):
values and TTLs arrive, the target's errors come back as Redis words them, a key the target
refused stays, a silent target ends in IOERR without holding the server meanwhile, and through
a follower of a 3-node cluster the DEL is replicated. Under HY_TARGET=redis the source is a
redis-server too, which checks the expected replies themselves."""

import socket
import threading

import pytest
import redis

from cluster import with_follower
from conftest import IS_REDIS, free_port, start_redis_server, wait_for


@pytest.fixture(scope="module")
def redis_target(tmp_path_factory):
    s = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield s
    s.stop()


@pytest.fixture
def tgt(redis_target):
    c = redis_target.client(decode_responses=True)
    c.config_set("requirepass", "")
    c.flushall()
    yield c
    c.close()


def migrate(r, port, key, *opts, db=0, timeout=5000):
    return r.execute_command("MIGRATE", "127.0.0.1", port, key, db, timeout, *opts)


def test_migrate_moves_a_key_with_its_ttl(r, tgt, redis_target):
    """A key leaves the source and arrives with its value and its TTL; one without a TTL
    arrives without one."""
    r.rpush("list", "a", "b", "c")
    r.pexpire("list", 100000)
    r.set("plain", "v")
    assert migrate(r, redis_target.port, "list") == "OK"
    assert migrate(r, redis_target.port, "plain") == "OK"
    assert r.exists("list", "plain") == 0
    assert tgt.lrange("list", 0, -1) == ["a", "b", "c"]
    assert 0 < tgt.pttl("list") <= 100000
    assert tgt.get("plain") == "v" and tgt.ttl("plain") == -1


def test_migrate_copy_replace_and_busykey(r, tgt, redis_target):
    """COPY keeps the source's key; a key the target has already is refused with Redis's
    BUSYKEY (and stays here) unless REPLACE."""
    r.sadd("s", "x", "y")
    assert migrate(r, redis_target.port, "s", "COPY") == "OK"
    assert r.exists("s") == 1 and tgt.smembers("s") == {"x", "y"}
    r.sadd("s", "z")
    with pytest.raises(redis.ResponseError, match="Target instance replied with error: BUSYKEY"):
        migrate(r, redis_target.port, "s")
    assert r.exists("s") == 1
    assert migrate(r, redis_target.port, "s", "REPLACE") == "OK"
    assert r.exists("s") == 0 and tgt.smembers("s") == {"x", "y", "z"}


def test_migrate_keys_deletes_only_what_the_target_acknowledged(r, tgt, redis_target):
    """MIGRATE ... KEYS: the missing keys are skipped, NOKEY when none exists, and a key the
    target refused (busy, no REPLACE) stays while the others move."""
    assert migrate(r, redis_target.port, "", "KEYS", "{t}none1", "{t}none2") == "NOKEY"
    r.mset({"{t}a": "1", "{t}b": "2", "{t}c": "3", "{t}d": "4"})
    tgt.mset({"{t}b": "busy", "{t}d": "busy"})
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        migrate(r, redis_target.port, "", "KEYS", "{t}a", "{t}b", "{t}none", "{t}c", "{t}d")
    assert sorted(k for k in ("{t}a", "{t}b", "{t}c", "{t}d") if r.exists(k)) == ["{t}b", "{t}d"]
    assert tgt.mget("{t}a", "{t}b", "{t}c", "{t}d") == ["1", "busy", "3", "busy"]


def test_migrate_auth_and_wrong_password(r, tgt, redis_target):
    """AUTH pw and AUTH2 user pw authenticate to the target; a wrong password is the
    target's WRONGPASS, and the key stays."""
    tgt.config_set("requirepass", "secret")
    try:
        r.set("k1", "v1")
        r.set("k2", "v2")
        assert migrate(r, redis_target.port, "k1", "AUTH", "secret") == "OK"
        assert migrate(r, redis_target.port, "k2", "AUTH2", "default", "secret") == "OK"
        r.set("k3", "v3")
        with pytest.raises(redis.ResponseError, match="WRONGPASS"):
            migrate(r, redis_target.port, "k3", "AUTH", "nope")
        assert r.get("k3") == "v3"
        tgt.execute_command("AUTH", "secret")
        # (redis-server's cached, authenticated connection may still RESTORE k3 there)
        assert tgt.mget("k1", "k2") == ["v1", "v2"]
    finally:
        tgt.config_set("requirepass", "")


def test_migrate_syntax_and_connection_errors(r):
    """Redis's errors for a bad call, and IOERR for a target nobody listens on (Redis learns
    of the refused connection when it writes, and says so)."""
    with pytest.raises(redis.ResponseError, match="must be set to the empty string"):
        migrate(r, 1, "notempty", "KEYS", "a")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        migrate(r, 1, "k", "BOGUS")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        migrate(r, 1, "k", "AUTH")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("MIGRATE", "127.0.0.1", 1, "k", "zero", 1000)
    r.set("k", "v")
    closed = free_port()
    with pytest.raises(redis.ResponseError, match="IOERR error or timeout writing"):
        migrate(r, closed, "k", timeout=1000)
    assert r.get("k") == "v"


def test_migrate_to_a_silent_target_times_out_without_holding_the_server(r, srv):
    """A target that accepts and never answers: MIGRATE ends in IOERR after its timeout, the
    key stays, and other clients are served while it waits (the I/O is off the loop)."""
    if IS_REDIS:
        pytest.skip("redis-server blocks in MIGRATE by design")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    r.set("stuck", "v")
    done, out = threading.Event(), {}

    def run():
        c = srv.client(decode_responses=True)
        try:
            out["reply"] = migrate(c, silent.getsockname()[1], "stuck", timeout=8000)
        except redis.ResponseError as e:
            out["reply"] = str(e)
        finally:
            c.close()
            done.set()

    t = threading.Thread(target=run)
    t.start()
    try:
        silent.settimeout(10)
        conn, _ = silent.accept()  # MIGRATE connected: it now waits for replies
        conn.settimeout(None)
        assert r.ping() and r.get("stuck") == "v"
        assert not done.is_set(), "MIGRATE answered before its silent target timed out"
        assert done.wait(30)
        assert out["reply"].startswith("IOERR error or timeout reading"), out
        assert r.get("stuck") == "v"
    finally:
        t.join(30)
        silent.close()
        if "conn" in locals():
            conn.close()


def test_migrate_whose_client_left_still_deletes_what_the_target_took(r, srv):
    """A client that closes its connection while MIGRATE waits for the target: once the target
    acknowledges (here a fake target answering SELECT and RESTORE +OK, only after the client
    left), the key is deleted all the same (the target has it now), and the server goes on."""
    if IS_REDIS:
        pytest.skip("redis-server answers MIGRATE within the call: its client cannot leave first")
    fake = socket.socket()
    fake.bind(("127.0.0.1", 0))
    fake.listen(4)
    fake.settimeout(10)
    r.set("leaving", "v")
    c = srv.raw()
    cid = c.cmd("CLIENT", "ID")
    c.send(c.encode("MIGRATE", "127.0.0.1", fake.getsockname()[1], "leaving", 0, 10000))
    conn, _ = fake.accept()
    try:
        conn.settimeout(10)
        got = b""
        while got.count(b"RESTORE") == 0 or not got.endswith(b"\r\n"):
            got += conn.recv(65536)  # SELECT and RESTORE, in one write
        c.close()  # the client leaves before the target answers
        wait_for(lambda: all(int(x["id"]) != cid for x in r.client_list()), 10,
                 "the server to notice the client left")
        conn.sendall(b"+OK\r\n+OK\r\n")
        wait_for(lambda: r.exists("leaving") == 0, 10, "the DEL after the target's OK")
        assert r.ping()
    finally:
        conn.close()
        fake.close()


@pytest.mark.halyard_only
def test_migrate_to_another_halyard(r, servers):
    """The target may be another halyard: its RESTORE reads halyard's DUMP payloads."""
    other = servers.start()
    o = other.client(decode_responses=True)
    r.zadd("z", {"a": 1, "b": 2})
    r.hset("h", mapping={"f": "v"})
    assert migrate(r, other.port, "", "KEYS", "z") == "OK"
    assert migrate(r, other.port, "h") == "OK"
    assert o.zrange("z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.0)]
    assert o.hgetall("h") == {"f": "v"}
    assert r.exists("z", "h") == 0
    with pytest.raises(redis.ResponseError, match="Target instance replied with error"):
        r.set("x", "1")
        migrate(r, other.port, "x", db=9)  # halyard has database 0 only
    assert r.get("x") == "1"
    o.close()


@pytest.mark.halyard_only
def test_migrate_through_a_follower_replicates_the_delete(tmp_path_factory, tgt, redis_target):
    """Sent to a follower, MIGRATE runs on the leader; the key arrives, and its DEL reaches
    every replica."""
    with with_follower(tmp_path_factory) as (c, fi):
        f = redis.Redis(port=c.ports[fi], decode_responses=True)
        f.set("moved", "v", px=60000)
        f.set("copied", "w")
        assert migrate(f, redis_target.port, "moved") == "OK"
        assert migrate(f, redis_target.port, "copied", "COPY") == "OK"
        assert tgt.get("moved") == "v" and tgt.get("copied") == "w"
        for port in c.ports:
            n = redis.Redis(port=port, decode_responses=True, single_connection_client=True)
            n.execute_command("READONLY")
            # One log: "copied" was set after "moved" and before the MIGRATE's DEL, so once a
            # replica holds "copied", a "moved" it lacks is the DEL's doing, not a SET it has
            # yet to apply (waiting for the DEL alone passed on a replica still behind both)
            wait_for(lambda: n.get("copied") == "w", 10, "the SETs on node %d" % port)
            wait_for(lambda: n.exists("moved") == 0, 10, "the DEL on node %d" % port)
            n.close()
        f.close()

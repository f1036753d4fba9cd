"""Key expiry: lazy (on access), active (keys nobody reads go away), and TTL reporting."""

import time

import pytest

from conftest import info_dict, wait_for


def wait_past(t_monotonic):
    """Waits until the local monotonic clock passes t (the condition these tests are about)."""
    wait_for(lambda: time.monotonic() > t_monotonic, 30, "clock to pass the expiry time", interval=0.01)


def test_lazy_expiry_string(raw):
    """A key SET with PX is visible until its time, and invisible to GET/EXISTS/TTL as soon
    as its time has passed."""
    def steps(px):
        return raw.cmd("SET", "k", "v", "PX", str(px)), raw.cmd("GET", "k")

    px, t0, (r, got) = before_expiry(raw, steps)
    assert r == "OK" and got == b"v", (r, got)  # it was there: its absence later means something
    wait_past(t0 + px / 1000.0 + 0.2)
    assert raw.cmd("GET", "k") is None
    assert raw.cmd("EXISTS", "k") == 0
    assert raw.cmd("TTL", "k") == -2
    assert raw.cmd("PTTL", "k") == -2
    assert raw.cmd("TYPE", "k") == "none"


def test_lazy_expiry_hash(raw):
    """An expired hash is gone for HGET/HLEN/HGETALL, and HSET afterwards starts a fresh hash."""
    def steps(px):
        raw.cmd("HSET", "h", "a", "1", "b", "2")
        return raw.cmd("PEXPIRE", "h", str(px)), raw.cmd("HLEN", "h")

    px, t0, (r, n) = before_expiry(raw, steps)
    assert r == 1 and n == 2, (r, n)
    wait_past(t0 + px / 1000.0 + 0.2)
    assert raw.cmd("HGET", "h", "a") is None
    assert raw.cmd("HLEN", "h") == 0
    assert raw.cmd("HGETALL", "h") == []
    assert raw.cmd("HSET", "h", "c", "3") == 1
    assert raw.cmd("HLEN", "h") == 1
    assert raw.cmd("TTL", "h") == -1


def test_expired_keys_hidden_from_listing(raw):
    """Expired keys are not returned by KEYS, SCAN, MGET or EXISTS even before being reclaimed."""
    for i in range(50):
        raw.cmd("SET", "tmp:%d" % i, "v", "PX", "50")
    raw.cmd("SET", "keep", "v")
    t0 = time.monotonic()  # every deadline was set before this reply (a loaded machine: late)
    wait_past(t0 + 0.3)
    assert raw.cmd("KEYS", "*") == [b"keep"]
    cursor, seen = b"0", []
    while True:
        cursor, keys = raw.cmd("SCAN", cursor, "COUNT", "100")
        seen += keys
        if cursor == b"0":
            break
    assert seen == [b"keep"]
    assert raw.cmd("MGET", "tmp:0", "tmp:1", "keep") == [None, None, b"v"]
    assert raw.cmd("EXISTS", *["tmp:%d" % i for i in range(50)]) == 0


def test_write_after_expiry_starts_fresh(raw):
    """SETNX, INCR and APPEND on an expired key behave as if the key were absent."""
    raw.cmd("SET", "a", "x", "PX", "50")
    raw.cmd("SET", "n", "41", "PX", "50")
    raw.cmd("SET", "s", "old", "PX", "50")
    t0 = time.monotonic()  # after the deadlines were set
    wait_past(t0 + 0.3)
    assert raw.cmd("SETNX", "a", "new") == 1
    assert raw.cmd("INCR", "n") == 1
    assert raw.cmd("APPEND", "s", "new") == 3
    assert raw.cmd("TTL", "a") == -1 and raw.cmd("TTL", "n") == -1 and raw.cmd("TTL", "s") == -1


def before_expiry(raw, steps):
    """Runs steps(px) (commands on keys that expire px ms after the first of them) with px =
    100 ms, and again with a longer px each time the round trips did not all finish within
    px (a loaded machine): only then is what they answered defined (the keys had not
    expired yet). Returns (px, the time the last reply came, the replies)."""
    for px in (100, 1000, 10000):
        t0 = time.monotonic()
        replies = steps(px)
        done = time.monotonic()
        if done - t0 < px / 1000.0:
            # Every deadline was set before the last reply came: px after it they have passed.
            return px, done, replies
    raise AssertionError("round trips took longer than 10 s: the machine is too loaded to test this")


def test_persist_cancels_expiry(raw):
    """PERSIST and GETEX PERSIST keep a key past its former expiry time."""
    def steps(px):
        raw.cmd("SET", "a", "1", "PX", str(px))
        raw.cmd("SET", "b", "2", "PX", str(px))
        return raw.cmd("PERSIST", "a"), raw.cmd("GETEX", "b", "PERSIST")

    px, t0, (persisted, got) = before_expiry(raw, steps)
    assert persisted == 1 and got == b"2", (persisted, got)
    wait_past(t0 + px / 1000.0 + 0.3)
    assert raw.cmd("GET", "a") == b"1"
    assert raw.cmd("GET", "b") == b"2"


def test_renamed_key_keeps_expiry(raw):
    """A volatile key renamed keeps its deadline and expires under the new name."""
    def steps(px):
        raw.cmd("SET", "old", "v", "PX", str(px))
        return raw.cmd("RENAME", "old", "new"), raw.cmd("PTTL", "new")

    px, t0, (renamed, pttl) = before_expiry(raw, steps)
    assert renamed == "OK"
    assert 0 < pttl <= px
    wait_past(t0 + px / 1000.0 + 0.3)
    assert raw.cmd("GET", "new") is None


def test_active_expiry_reclaims_unread_keys(srv):
    """Keys with short TTLs that are never read are removed by active expiry: DBSIZE drops to the persistent ones."""
    with srv.raw() as c:
        n = 3000
        batch = []
        for i in range(n):
            batch.append(c.encode("SET", "vol:%d" % i, "x" * 20, "PX", str(100 + (i % 400))))
        for i in range(100):
            batch.append(c.encode("SET", "persist:%d" % i, "y"))
        c.send(b"".join(batch))
        for _ in range(n + 100):
            assert c.read() == "OK"
        assert c.cmd("DBSIZE") >= 100
        # Never touch the volatile keys; only watch the count.
        wait_for(lambda: c.cmd("DBSIZE") == 100, 30, "active expiry to reclaim %d unread keys" % n, interval=0.1)
        assert info_dict(c, "keyspace")["db0"].startswith("keys=100,expires=0,")


def test_active_expiry_hashes(srv):
    """Volatile hashes nobody reads are reclaimed by active expiry too."""
    with srv.raw() as c:
        for i in range(500):
            c.cmd("HSET", "vh:%d" % i, "f", "v")
            c.cmd("PEXPIRE", "vh:%d" % i, "100")
        wait_for(lambda: c.cmd("DBSIZE") == 0, 30, "active expiry of hashes", interval=0.1)


def test_ttl_counts_down(raw):
    """PTTL decreases with time and stays within the set bound; TTL is in whole seconds."""
    raw.cmd("SET", "k", "v", "PX", "3000")
    first = raw.cmd("PTTL", "k")
    assert 2000 < first <= 3000
    assert raw.cmd("TTL", "k") in (2, 3)
    wait_for(lambda: raw.cmd("PTTL", "k") < first - 200, 10, "PTTL to decrease")
    assert raw.cmd("PTTL", "k") > 0
    raw.cmd("SET", "s", "v", "EX", "1000")
    assert 999 <= raw.cmd("TTL", "s") <= 1000
    assert 998000 < raw.cmd("PTTL", "s") <= 1000000


def test_expire_overwrite_updates_deadline(raw):
    """A second EXPIRE replaces the first deadline (shorter or longer)."""
    def steps(px):
        raw.cmd("SET", "k", "v", "EX", "1000")
        return raw.cmd("PEXPIRE", "k", str(px)), raw.cmd("PTTL", "k")

    px, t0, (r, pttl) = before_expiry(raw, steps)
    assert r == 1 and 0 < pttl <= px, (r, pttl)  # -2 (gone at once) or -1 would not do
    wait_past(t0 + px / 1000.0 + 0.2)
    assert raw.cmd("GET", "k") is None


def _expire_untouched(raw, n):
    """Sets n keys with PX 100 in one pipeline, then waits (reading nothing) until active
    expiry has deleted them all."""
    assert raw.cmd("CONFIG", "RESETSTAT") == "OK"
    raw.send(b"".join(raw.encode("SET", "ax:%d" % i, "v", "PX", "100") for i in range(n)))
    assert [raw.read() for _ in range(n)] == ["OK"] * n
    wait_for(lambda: raw.cmd("DBSIZE") == 0, 30, "active expiry to delete %d keys" % n)


def test_active_expiry_counts_each_key_once(raw):
    """Issue 20: keys nobody reads are deleted by active expiry and each counts once in
    expired_keys (10 keys gave 160, 100 gave 443)."""
    for n in (10, 100):
        _expire_untouched(raw, n)
        assert int(info_dict(raw, "stats")["expired_keys"]) == n


@pytest.mark.halyard_only
def test_active_expiry_proposes_each_key_once(raw):
    """The leader does not propose a batch of deletions again while it waits to commit: 100
    keys expiring together take a few log entries, never more entries than keys (17 entries
    for 10 keys before the fix)."""
    before = int(info_dict(raw, "replication")["raft_last_index"])
    _expire_untouched(raw, 100)
    after = int(info_dict(raw, "replication")["raft_last_index"])
    sets = 100
    assert after - before - sets <= 10, "%d expiry entries for 100 keys" % (after - before - sets)

"""MULTI/EXEC/DISCARD/WATCH/UNWATCH (issue 13): Redis 7.0's replies and errors on one node, and
transactions on a partitioned 3-node cluster: through a follower, -CROSSSLOT across partitions,
and WATCH against writers on other nodes, where every committed read-modify-write must count
(a lost update would show in the final counter)."""

import threading

import pytest
import redis

from cluster import Cluster
from conftest import RawConn, RespError, wait_for

EXECABORT = "EXECABORT Transaction discarded because of previous errors."


def test_queued_replies_and_reads_see_own_writes(raw):
    """Every command answers +QUEUED; EXEC answers each command's reply in order, and a read
    after a write inside the transaction sees it."""
    raw.cmd("RPUSH", "l", "a", "b", "c")
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("LRANGE", "l", 0, -1) == "QUEUED"
    assert raw.cmd("PING") == "QUEUED"
    assert raw.cmd("RPUSH", "l", "d") == "QUEUED"
    assert raw.cmd("LRANGE", "l", 0, -1) == "QUEUED"
    assert raw.cmd("SET", "x", "1") == "QUEUED"
    assert raw.cmd("INCR", "x") == "QUEUED"
    assert raw.cmd("GET", "x") == "QUEUED"
    assert raw.cmd("EXEC") == [[b"a", b"b", b"c"], "PONG", 4, [b"a", b"b", b"c", b"d"], "OK", 2,
                               b"2"]
    # Runtime errors answer in place, the rest still runs (no rollback, as Redis).
    assert raw.cmd("MULTI") == "OK"
    raw.cmd("LPUSH", "x", "v")
    raw.cmd("INCR", "x")
    got = raw.cmd("EXEC")
    assert isinstance(got[0], RespError) and got[0].startswith("WRONGTYPE")
    assert got[1] == 3
    # SPOP's pick is made inside the entry: it sees the set the transaction found.
    raw.cmd("SADD", "myset", "a")
    raw.cmd("MULTI")
    raw.cmd("SPOP", "myset")
    assert raw.cmd("EXEC") == [b"a"]
    assert raw.cmd("EXISTS", "myset") == 0


def commit_index(raw):
    info = raw.cmd("INFO", "replication").decode()
    return int(next(l.split(":")[1] for l in info.split("\r\n")
                    if l.startswith("raft_commit_index:")))


def test_blocking_reads_in_a_transaction_never_block(raw):
    """XREAD BLOCK and XREADGROUP BLOCK inside MULTI answer at once, as Redis (an EXEC holding
    an XREAD BLOCK on an empty stream waited for ever)."""
    raw.cmd("DEL", "xs")
    assert raw.cmd("XGROUP", "CREATE", "xs", "g", "$", "MKSTREAM") == "OK"
    raw.sock.settimeout(20)
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("XREAD", "BLOCK", 0, "STREAMS", "xs", "$") == "QUEUED"
    assert raw.cmd("XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "xs", ">") == "QUEUED"
    assert raw.cmd("EXEC") == [None, None]


def test_transaction_of_reads_is_not_a_log_entry(raw):
    """A transaction of reads only runs where reads run (HY.EXEC_RO): no log entry, the same
    replies and watch checks; one write in it makes it an entry again. HY.EXEC_RO sent by hand
    with a write in it is refused."""
    raw.cmd("SET", "x", "1")
    raw.cmd("HSET", "h", "f", "v")
    # The server may commit an entry of its own between two looks at the index (CI saw one
    # move by 1 once, cause not found); a transaction that were an entry moves it every time.
    moved = []
    for _ in range(3):
        before = commit_index(raw)
        raw.cmd("WATCH", "x")
        raw.cmd("MULTI")
        for cmd in (("GET", "x"), ("HGET", "h", "f"), ("EXISTS", "x", "h"), ("TTL", "x")):
            assert raw.cmd(*cmd) == "QUEUED"
        assert raw.cmd("EXEC") == [b"1", b"v", 2, -1]
        moved.append(commit_index(raw) - before)
        if moved[-1] == 0:
            break
    assert moved[-1] == 0, moved
    raw.cmd("WATCH", "x")
    raw.cmd("SET", "x", "2")  # the watched key changes: the reads do not run
    raw.cmd("MULTI")
    raw.cmd("GET", "x")
    assert raw.cmd("EXEC") is None
    after_set = commit_index(raw)
    raw.cmd("MULTI")
    raw.cmd("GET", "x")
    raw.cmd("INCR", "x")
    assert raw.cmd("EXEC") == [b"2", 3]
    assert commit_index(raw) > after_set
    assert raw.cmd("HY.EXEC_RO", "0", "3", "SET", "x", "9") == "ERR HY.EXEC_RO holds a write"
    assert raw.cmd("GET", "x") == b"3"


def test_errors_and_execabort(raw):
    """Queuing errors make EXEC answer EXECABORT with nothing applied; Redis's texts for EXEC and
    DISCARD without MULTI, nested MULTI and WATCH inside MULTI; DISCARD drops the queue."""
    assert raw.cmd("EXEC") == "ERR EXEC without MULTI"
    assert raw.cmd("DISCARD") == "ERR DISCARD without MULTI"
    raw.cmd("MULTI")
    assert raw.cmd("MULTI") == "ERR MULTI calls can not be nested"
    assert raw.cmd("WATCH", "x") == "ERR WATCH inside MULTI is not allowed"
    raw.cmd("SET", "a", "1")
    assert raw.cmd("NOSUCHCOMMAND").startswith("ERR unknown command 'NOSUCHCOMMAND'")
    raw.cmd("SET", "b", "1")
    assert raw.cmd("EXEC") == EXECABORT
    assert raw.cmd("EXISTS", "a", "b") == 0
    raw.cmd("MULTI")
    assert raw.cmd("GET") == "ERR wrong number of arguments for 'get' command"
    assert raw.cmd("EXEC") == EXECABORT
    raw.cmd("MULTI")
    assert raw.cmd("HALYARD", "STATUS") == "ERR Command not allowed inside a transaction"
    assert raw.cmd("EXEC") == EXECABORT
    raw.cmd("MULTI")
    raw.cmd("SET", "a", "1")
    assert raw.cmd("DISCARD") == "OK"
    assert raw.cmd("EXISTS", "a") == 0
    assert raw.cmd("PING") == "PONG"  # the MULTI state is gone
    raw.cmd("MULTI")
    assert raw.cmd("EXEC") == []


def test_watch(raw, srv):
    """EXEC answers nil (nothing applied) when a watched key changed after WATCH, by this client
    or another, by EXPIRE, by FLUSHALL, or by its own expiry; a watched missing key survives a
    FLUSHALL; UNWATCH, DISCARD and EXEC forget the watches."""
    other = srv.raw()
    raw.cmd("SET", "x", "30")
    raw.cmd("WATCH", "x")
    other.cmd("SET", "x", "40")
    raw.cmd("MULTI")
    raw.cmd("INCR", "x")
    assert raw.cmd("EXEC") is None
    assert raw.cmd("GET", "x") == b"40"
    # Not modified: runs; and after EXEC the key is no longer watched.
    raw.cmd("WATCH", "x", "y", "z")
    raw.cmd("MULTI")
    raw.cmd("INCR", "x")
    assert raw.cmd("EXEC") == [41]
    other.cmd("SET", "x", "1")
    raw.cmd("MULTI")
    raw.cmd("PING")
    assert raw.cmd("EXEC") == ["PONG"]
    # UNWATCH and DISCARD forget.
    raw.cmd("WATCH", "x")
    other.cmd("SET", "x", "2")
    assert raw.cmd("UNWATCH") == "OK"
    raw.cmd("MULTI")
    raw.cmd("PING")
    assert raw.cmd("EXEC") == ["PONG"]
    raw.cmd("WATCH", "x")
    other.cmd("SET", "x", "10")
    raw.cmd("MULTI")
    raw.cmd("DISCARD")
    raw.cmd("MULTI")
    raw.cmd("INCR", "x")
    assert raw.cmd("EXEC") == [11]
    # EXPIRE touches; FLUSHALL touches existing keys only.
    raw.cmd("WATCH", "x")
    other.cmd("EXPIRE", "x", 100)
    raw.cmd("MULTI")
    raw.cmd("PING")
    assert raw.cmd("EXEC") is None
    raw.cmd("DEL", "missing")
    raw.cmd("WATCH", "x", "missing")
    other.cmd("FLUSHALL")
    raw.cmd("MULTI")
    raw.cmd("PING")
    assert raw.cmd("EXEC") is None
    raw.cmd("WATCH", "missing")
    other.cmd("FLUSHALL")
    raw.cmd("MULTI")
    raw.cmd("PING")
    assert raw.cmd("EXEC") == ["PONG"]
    # Its own expiry, even before anything deletes it.
    raw.cmd("SET", "e", "1", "PX", 50)
    raw.cmd("WATCH", "e")
    wait_for(lambda: other.cmd("EXISTS", "e") == 0, 5, "e to expire")
    raw.cmd("MULTI")
    raw.cmd("SET", "e", "2")
    assert raw.cmd("EXEC") is None
    other.close()


def test_resp3_and_redis_py(srv):
    """RESP3: a null for an aborted EXEC; redis-py's transaction pipeline and its
    WATCH/retry helper."""
    with srv.raw() as c:
        assert c.cmd("HELLO", "3")
        c.cmd("SET", "k", "1")
        c.cmd("WATCH", "k")
        c.cmd("INCR", "k")
        c.cmd("MULTI")
        c.cmd("GET", "k")
        assert c.cmd("EXEC") is None
    r = srv.client()
    p = r.pipeline(transaction=True)
    p.set("a", 1).incr("a").get("a")
    assert p.execute() == [True, 2, "2"]

    def double(pipe):
        v = int(pipe.get("a"))
        pipe.multi()
        pipe.set("a", v * 2)

    assert r.transaction(double, "a") == [True]
    assert r.get("a") == "4"
    r.close()


# ---- a partitioned cluster ---------------------------------------------------------------------

def settled(c):
    """Every node sees a leader for each of the 4 partitions, the same one, and the leaderships
    are balanced (1, 1, 2): the balancer, which moves leaderships after a start, is done."""
    views = []
    for port in c.ports:
        with RawConn(port) as r:
            views.append(sorted((e[0], e[1], e[2][1]) for e in r.cmd("CLUSTER", "SLOTS")))
    if any(v != views[0] for v in views) or len(views[0]) < 4:
        return False
    counts = {}
    for _lo, _hi, port in views[0]:
        counts[port] = counts.get(port, 0) + 1
    return sorted(counts.values()) == [1, 1, 2]


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3, {"partitions": 4})
    c.start_all()
    wait_for(lambda: settled(c), 30, "the partitions' leaderships to settle")
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


def test_cluster_follower_crossslot_and_concurrent_watch(cluster):
    """Through a follower of the key's partition a transaction runs as one entry at the
    leader; keys of two partitions are -CROSSSLOT (and abort the EXEC); and WATCH-guarded
    increments from clients on every node never lose an update: each EXEC that commits adds
    exactly one."""
    ports = cluster.ports
    key = "{acct}n"
    wait_for(lambda: leader_port_of(ports[0], key) in ports, 20, "a leader for the key's partition")
    lead = leader_port_of(ports[0], key)
    follower = next(p for p in ports if p != lead)
    with RawConn(follower) as c:
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", key, "10") == "QUEUED"
        assert c.cmd("INCR", key) == "QUEUED"
        assert c.cmd("GET", key) == "QUEUED"
        assert c.cmd("EXEC") == ["OK", 11, b"11"]
        # Find a key of another partition.
        slot = c.cmd("CLUSTER", "KEYSLOT", key)
        other = next(k for k in ("k%d" % i for i in range(1000))
                     if abs(c.cmd("CLUSTER", "KEYSLOT", k) - slot) > 16384 // 4)
        c.cmd("MULTI")
        c.cmd("SET", key, "1")
        assert c.cmd("SET", other, "1") == "CROSSSLOT Keys in request don't hash to the same slot"
        assert c.cmd("EXEC") == EXECABORT
        assert c.cmd("WATCH", key, other) == "CROSSSLOT Keys in request don't hash to the same slot"
        c.cmd("WATCH", key)
        c.cmd("MULTI")
        assert c.cmd("SET", other, "1") == "CROSSSLOT Keys in request don't hash to the same slot"
        assert c.cmd("EXEC") == EXECABORT
        assert c.cmd("GET", key) == b"11"

    committed = [0] * len(ports)
    errors = []

    def worker(i, port):
        try:
            r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=20, decode_responses=True)
            done = 0
            while done < 25:
                with r.pipeline(transaction=True) as p:
                    try:
                        p.watch(key)
                        v = int(p.get(key))
                        p.multi()
                        p.set(key, v + 1)
                        p.execute()
                        done += 1
                    except redis.WatchError:
                        pass
            committed[i] = done
            r.close()
        except Exception as e:  # reported below, with the thread's index
            errors.append("worker %d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "workers did not finish"
    assert not errors, errors
    with RawConn(lead) as c:
        assert c.cmd("GET", key) == str(11 + sum(committed)).encode()
    # Every replica applied the same entries: each node's own replica holds the same value.
    for p in ports:
        with RawConn(p) as c:
            c.cmd("READONLY")
            wait_for(lambda: c.cmd("GET", key) == str(11 + sum(committed)).encode(), 10,
                     "replica on %d to catch up" % p)


def test_moved_mode_names_the_transactions_slot(tmp_path_factory):
    """With redirect: moved, an EXEC (and a WATCH) on a node that does not lead the keys'
    partition answers -MOVED with the slot of those keys and the partition's leader, as Redis
    Cluster does: it answered "MOVED 0", which told a cluster client that slot 0 lives there."""
    c = Cluster(tmp_path_factory, 3, {"partitions": 4, "redirect": "moved"})
    c.start_all()
    try:
        wait_for(lambda: settled(c), 30, "the partitions' leaderships to settle")
        seen = 0
        for key in ("{t%d}k" % i for i in range(40)):
            # A leader change between finding the leader and asking names the new one: that
            # key is skipped (it is asked again below if too few were seen).
            leader = leader_port_of(c.ports[0], key)
            port = next(p for p in c.ports if p != leader)
            with RawConn(port) as r:
                slot = r.cmd("CLUSTER", "KEYSLOT", key)
                want = "MOVED %d 127.0.0.1:%d" % (slot, leader)
                assert r.cmd("MULTI") == "OK"
                assert r.cmd("SET", key, "v") == "QUEUED"
                got_exec = r.cmd("EXEC")
                got_watch = r.cmd("WATCH", key)
            if leader_port_of(c.ports[0], key) != leader:
                continue
            assert (got_exec, got_watch) == (want, want), key
            seen += 1
        assert seen >= 20, "leaderships moved during most of the rounds"
    finally:
        errors = c.stop_all()
        assert not errors, "\n".join(errors)


def test_exec_stream_survives_leader_kill(tmp_path_factory):
    """A stream of EXECs through a follower while the leader is killed with SIGKILL: every
    transaction applies whole or not at all, at most once (the follower re-sends under its
    session), each acknowledged one exactly once and in its place: the counter it
    incremented equals its element's position in the list it appended to."""
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    try:
        lead = c.leader()
        follower = next(i for i in range(3) if i != lead)
        results = {}
        errors = []
        started = threading.Event()

        def stream():
            try:
                r = redis.Redis(host="127.0.0.1", port=c.ports[follower], socket_timeout=30)
                for i in range(200):
                    p = r.pipeline(transaction=True)
                    p.incr("ctr").rpush("log", i)
                    try:
                        results[i] = p.execute()
                    except redis.ResponseError as e:
                        results[i] = e  # UNKNOWN / TRYAGAIN: may or may not be applied
                    if i == 40:
                        started.set()
                r.close()
            except Exception as e:
                errors.append(repr(e))
                started.set()

        t = threading.Thread(target=stream)
        t.start()
        assert started.wait(60)
        c.kill(lead)
        done_at_kill = len(results)
        t.join(180)
        assert not t.is_alive() and not errors, errors
        assert done_at_kill < 200, "the stream ended before the kill: nothing was tested"
        assert c.leader(exclude=(lead,)) != lead
        with RawConn(c.ports[follower]) as conn:
            log = [int(v) for v in conn.cmd("LRANGE", "log", 0, -1)]
            ctr = int(conn.cmd("GET", "ctr"))
        assert len(log) == len(set(log)), "a transaction applied twice"
        assert ctr == len(log), "a transaction applied in part"
        acked = {i: v for i, v in results.items() if isinstance(v, list)}
        for i, (n, length) in acked.items():
            assert log.index(i) == n - 1 and length == n, (i, n, length)
        assert len(acked) >= 150, "too few transactions acknowledged: %d" % len(acked)
    finally:
        errors = c.stop_all()
    assert not errors, "\n".join(errors)


def test_session_requests_inside_a_transaction(raw):
    """HY.REQ inside MULTI keeps its exactly-once rule: the same (session, seq) in a later
    transaction returns the kept reply and is not applied again."""
    sid = raw.cmd("HY.SESSION", "OPEN")
    for _ in range(2):
        raw.cmd("MULTI")
        assert raw.cmd("HY.REQ", sid, 1, "INCR", "k") == "QUEUED"
        assert raw.cmd("GET", "k") == "QUEUED"
        assert raw.cmd("EXEC") == [1, b"1"]
    raw.cmd("MULTI")
    raw.cmd("HY.REQ", sid, 2, "INCR", "k")
    assert raw.cmd("EXEC") == [2]


def test_queue_is_bounded(servers):
    """The queue of a transaction is bounded by client-query-buffer-limit: past it a command
    is refused and EXEC aborts, nothing applied."""
    s = servers.start({"client-query-buffer-limit": "1mb"})
    with s.raw() as c:
        c.cmd("MULTI")
        big = "x" * (256 * 1024)
        replies = [c.cmd("SET", "k%d" % i, big) for i in range(6)]
        assert replies[:3] == ["QUEUED"] * 3
        assert "ERR the transaction's queue is over client-query-buffer-limit" in replies
        assert c.cmd("EXEC") == EXECABORT
        assert c.cmd("DBSIZE") == 0

"""The server survives hostile or unlucky clients, and its bookkeeping stays right under churn:
clients vanishing mid-reply, connection churn, SCAN across table growth, memory accounting."""

import socket
import struct

from conftest import RawConn, info_dict, join_all, start_workers, wait_for


def test_client_reset_mid_reply(srv):
    """Clients that vanish (RST) while large replies are being written do not hurt the server."""
    with srv.raw() as admin:
        assert admin.cmd("SET", "big", b"x" * (4 * 1024 * 1024)) == "OK"
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(RawConn.encode("GET", "big") * 5)
            s.recv(100)  # the reply has started
            # SO_LINGER 0: close() sends RST, so the server's next write fails (EPIPE/ECONNRESET).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        assert admin.cmd("PING") == "PONG"
        assert admin.cmd("STRLEN", "big") == 4 * 1024 * 1024
        wait_for(lambda: info_dict(admin, "clients")["connected_clients"] == "1", 10, "dead clients to be released")
    assert srv.alive()


def test_client_closes_before_reading_reply(srv):
    """A client that sends commands and closes at once (FIN) does not disturb the server."""
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(RawConn.encode("SET", "fin:%d" % i, "v") + RawConn.encode("GET", "fin:%d" % i))
        s.close()
    with srv.raw() as c:
        assert c.cmd("PING") == "PONG"
        wait_for(lambda: info_dict(c, "clients")["connected_clients"] == "1", 10, "closed clients to be released")


def test_connection_churn(srv):
    """2,000 short-lived connections leave the client count and the keyspace consistent."""
    for i in range(2000):
        with srv.raw() as c:
            if i % 100 == 0:
                assert c.cmd("INCR", "churn") == i // 100 + 1
            else:
                c.send(c.encode("PING"))
                assert c.read() == "PONG"
    with srv.raw() as c:
        assert c.cmd("GET", "churn") == b"20"
        wait_for(lambda: info_dict(c, "clients")["connected_clients"] == "1", 10, "churned clients to be released")


def test_concurrent_writers_no_lost_updates(srv):
    """8 threads doing INCR/HINCRBY on shared keys lose no update."""
    per, threads = 500, 8
    errors = []

    def worker():
        try:
            with srv.raw() as c:
                for _ in range(per):
                    c.send(c.encode("INCR", "ctr") + c.encode("HINCRBY", "h", "f", "2"))
                    c.read()
                    c.read()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = start_workers(worker, [() for _ in range(threads)])
    join_all(ts, 60)
    assert not errors, errors
    with srv.raw() as c:
        assert c.cmd("GET", "ctr") == str(per * threads).encode()
        assert c.cmd("HGET", "h", "f") == str(2 * per * threads).encode()


def full_scan(c, *opts, during=None):
    cursor, seen, step = b"0", set(), 0
    while True:
        cursor, keys = c.cmd("SCAN", cursor, "COUNT", "10", *opts)
        seen.update(keys)
        if during:
            during(step)
        step += 1
        if cursor == b"0":
            return seen
        assert step < 1000000


def test_scan_guarantee_while_table_grows(srv):
    """Every key present for the whole SCAN is returned even while 20,000 inserts grow the table."""
    with srv.raw() as c, srv.raw() as w:
        base = ["base:%d" % i for i in range(3000)]
        for i in range(0, 3000, 500):
            c.cmd("MSET", *[x for k in base[i : i + 500] for x in (k, "v")])
        counter = [0]

        def grow(step):
            if counter[0] < 20000:
                w.cmd("MSET", *[x for j in range(counter[0], counter[0] + 200) for x in ("new:%d" % j, "v")])
                counter[0] += 200

        seen = full_scan(c, during=grow)
        missing = [k for k in base if k.encode() not in seen]
        assert not missing, "%d keys never returned, e.g. %s" % (len(missing), missing[:5])
        assert c.cmd("DBSIZE") == 3000 + counter[0]


def test_scan_guarantee_while_table_shrinks(srv):
    """Keys present for the whole SCAN are returned while most other keys are deleted."""
    with srv.raw() as c, srv.raw() as w:
        keep = ["keep:%d" % i for i in range(500)]
        gone = ["gone:%d" % i for i in range(20000)]
        for i in range(0, 20000, 1000):
            c.cmd("MSET", *[x for k in gone[i : i + 1000] for x in (k, "v")])
        c.cmd("MSET", *[x for k in keep for x in (k, "v")])
        left = list(gone)

        def shrink(step):
            if left:
                w.cmd("DEL", *left[:400])
                del left[:400]

        seen = full_scan(c, during=shrink)
        missing = [k for k in keep if k.encode() not in seen]
        assert not missing, "%d keys never returned, e.g. %s" % (len(missing), missing[:5])


def test_hscan_guarantee_while_hash_grows(srv):
    """HSCAN returns every original field while the hash grows from 1,000 to 11,000 fields."""
    with srv.raw() as c, srv.raw() as w:
        orig = ["f%d" % i for i in range(1000)]
        c.cmd("HSET", "h", *[x for f in orig for x in (f, "v")])
        cursor, seen, added = b"0", set(), 0
        while True:
            cursor, items = c.cmd("HSCAN", "h", cursor, "COUNT", "10")
            seen.update(items[::2])
            if added < 10000:
                w.cmd("HSET", "h", *[x for j in range(added, added + 200) for x in ("n%d" % j, "v")])
                added += 200
            if cursor == b"0":
                break
        missing = [f for f in orig if f.encode() not in seen]
        assert not missing, missing[:5]
        assert c.cmd("HLEN", "h") == 1000 + added


def test_used_memory_tracks_data(srv):
    """The dataset's memory grows by at least the data written and falls back after DEL and FLUSHALL."""
    # used_memory_dataset, in Redis and halyard alike, is the keyspace; used_memory is the whole
    # process, which in halyard also holds the Raft log until it is compacted into a snapshot.
    with srv.raw() as c:
        base = int(info_dict(c, "memory")["used_memory_dataset"])
        payload = 2000 * 10240  # the MSET values below; the hashes add 100 x 10 x 1 KiB
        for i in range(0, 2000, 100):
            c.cmd("MSET", *[x for j in range(i, i + 100) for x in ("m:%d" % j, "v" * 10240)])
        for i in range(100):
            c.cmd("HSET", "mh:%d" % i, *[x for j in range(10) for x in ("f%d" % j, "w" * 1024)])
        full = int(info_dict(c, "memory")["used_memory_dataset"])
        assert full - base >= payload + 100 * 10 * 1024, (base, full)
        assert full - base <= 3 * (payload + 1024 * 1024), "used_memory grew %d for ~21 MiB" % (full - base)
        c.cmd("DEL", *["m:%d" % j for j in range(1000)])
        half = int(info_dict(c, "memory")["used_memory_dataset"])
        assert half < full - 8 * 1024 * 1024, (full, half)
        assert c.cmd("FLUSHALL") == "OK"
        wait_for(lambda: int(info_dict(c, "memory")["used_memory_dataset"]) < base + 2 * 1024 * 1024,
                 10, "used_memory_dataset to return near its starting value after FLUSHALL")


def test_big_pipeline_with_concurrent_reader(srv):
    """A client pipelining 50 MB of GET replies while reading them is fully served."""
    with srv.raw() as c:
        value = b"y" * (10 * 1024)
        assert c.cmd("SET", "v", value) == "OK"
        n = 5000
        t = start_workers(c.send, [(RawConn.encode("GET", "v") * n,)], name="sender")
        for i in range(n):
            assert c.read() == value, i
        join_all(t, 30)
        assert c.cmd("PING") == "PONG"

"""Durability of the server itself: acknowledged writes survive SIGKILL and restarts, a
damaged log refuses to start with a pointer to --repair, and --repair brings it back."""

import os
import signal
import struct
import subprocess
import threading

import pytest

from conftest import RawConn, Server, join_all, start_workers, wait_for

pytestmark = pytest.mark.halyard_only


def restart(s):
    """Starts a new process on the same port and data directory as `s` (which has exited)."""
    n = Server(s.argv, s.port, s.workdir)
    n.wait_ready()
    return n


def keyspace(c, chunk=1000):
    """The whole keyspace as {key: value} (bytes for strings, {field: value} for hashes), read
    with pipelined TYPE, GET and HGETALL: restart tests compare every key, not a sample."""
    keys = sorted(c.cmd("KEYS", "*"))
    out = {}
    for lo in range(0, len(keys), chunk):
        part = keys[lo:lo + chunk]
        c.send(b"".join(c.encode("TYPE", k) for k in part))
        types = [c.read() for _ in part]
        reads = [("HGETALL" if t == "hash" else "GET", k) for k, t in zip(part, types)]
        assert all(t in ("string", "hash") for t in types), set(types)
        c.send(b"".join(c.encode(*r) for r in reads))
        for k in part:
            v = c.read()
            out[k] = v if not isinstance(v, list) else dict(zip(v[::2], v[1::2]))
    return out


def assert_same_keyspace(got, want):
    """Compares two keyspaces key by key, naming the first few differences."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if got[k] != want[k])
    assert not (missing or extra or wrong), "%d keys missing (e.g. %r), %d unexpected (e.g. %r), %d wrong (e.g. %r)" % (
        len(missing), missing[:3], len(extra), extra[:3], len(wrong),
        [(k, want[k], got[k]) for k in wrong[:3]])


def test_acknowledged_writes_survive_sigkill(servers):
    """Every write acknowledged before a SIGKILL is present after the restart, in order."""
    s = servers.start()
    acked = {}
    stop = threading.Event()

    def writer(w):
        c = RawConn(s.port)
        i = 0
        try:
            while not stop.is_set():
                if c.cmd("SET", "w%d" % w, i) != "OK":
                    break
                acked[w] = i  # only after the reply: the server said it is durable
                i += 1
        except OSError:
            pass  # the server died under us: the last write may or may not be there
        finally:
            c.close()

    threads = start_workers(writer, [(w,) for w in range(8)], name="writer")
    wait_for(lambda: len(acked) == 8 and min(acked.values()) >= 50, 20, "writers to make progress")
    s.send_signal(signal.SIGKILL)
    s.wait_exit()
    stop.set()
    join_all(threads, 10)  # a writer that died of anything but the kill fails the test
    servers.servers.remove(s)
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        for w, last in acked.items():
            got = int(c.cmd("GET", "w%d" % w))
            # The key holds the last acknowledged value or one written after it (a write whose
            # reply was lost to the kill may have committed), never an older one.
            assert got >= last, "writer %d: acknowledged %d, found %d" % (w, last, got)


def test_restart_keeps_every_type_and_ttl(servers):
    """A graceful restart keeps strings, hashes, counters and TTLs."""
    s = servers.start()
    want = {b"s": b"v", b"h": {b"a": b"1", b"b": b"2"}, b"n": b"41", b"t": b"x"}
    with s.raw() as c:
        assert c.cmd("SET", "s", "v") == "OK"
        assert c.cmd("HSET", "h", "a", "1", "b", "2") == 2
        assert c.cmd("INCRBY", "n", "41") == 41
        assert c.cmd("SET", "t", "x", "EX", "1000") == "OK"
        for i in range(300):
            value = b"y%d-" % i + b"y" * 100  # each value its own: a mixed-up key shows
            want[b"bulk:%d" % i] = value
            c.send(c.encode("SET", "bulk:%d" % i, value))
        for i in range(300):
            assert c.read() == "OK"
        assert_same_keyspace(keyspace(c), want)
    s.stop()
    servers.servers.remove(s)
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        assert_same_keyspace(keyspace(c), want)  # every key, type and value
        assert c.cmd("INCR", "n") == 42
        assert 990 <= c.cmd("TTL", "t") <= 1000
        assert c.cmd("TTL", "s") == -1 and c.cmd("TTL", "bulk:7") == -1


def test_snapshot_and_log_recover_together(servers):
    """After enough writes to take snapshots, a restart rebuilds the same keyspace."""
    s = servers.start()
    keys = 25000  # above NODE_SNAPSHOT_FORK_KEYS: snapshots are encoded in a forked child
    want = {}
    with s.raw() as c:
        for rnd in range(3):
            for lo in range(0, keys, 5000):
                c.send(b"".join(c.encode("SET", "k:%d" % i, "%d-%d" % (rnd, i)) for i in range(lo, lo + 5000)))
                for i in range(lo, lo + 5000):
                    assert c.read() == "OK"
                    want[b"k:%d" % i] = b"%d-%d" % (rnd, i)  # acknowledged: must survive
    # Snapshots are encoded in a forked child and handed back to the event loop: wait.
    def snapshotted():
        with s.raw() as c:
            return "raft_snapshot_index:0\r\n" not in c.cmd("INFO", "replication").decode()

    wait_for(snapshotted, 10, "a snapshot to be taken")
    assert "snapshot encoded in a child" in open(s.log_path).read()
    s.send_signal(signal.SIGKILL)
    s.wait_exit()
    servers.servers.remove(s)
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        assert c.cmd("DBSIZE") == keys
        assert_same_keyspace(keyspace(c), want)  # all 25,000 keys hold their last acknowledged value


SEG_HEADER = 16  # docs/disk-format.md, "Segments"
REC_HEADER = 40
STORE_OP_SET = 1


def _varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        v |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return v, i
        shift += 7


def segment_records(path, group=0):
    """The entry records of `group` in one segment of the node's shared log as
    [(offset, index, key or None)] (key: the first argument of a SET entry), parsed by the
    layout in docs/disk-format.md (other groups' records and term/vote or truncation records
    are skipped)."""
    data = open(path, "rb").read()
    assert data[:8] == b"HYWALSEG", path
    out, off = [], SEG_HEADER
    while off + REC_HEADER <= len(data):
        _crc, n, seq, rgroup, kind, rtype, index, _term = struct.unpack_from("<IIQIHHQQ", data, off)
        if seq == 0:
            break  # zeros: the end of the data
        size = REC_HEADER + ((n + 7) & ~7)
        if kind != 1 or rgroup != group:
            off += size
            continue
        payload = data[off + REC_HEADER:off + REC_HEADER + n]
        key = None
        if rtype == 1 and payload[1] == STORE_OP_SET:  # version, op, then 4 varints, argc, key
            i = 2
            for _ in range(5):
                _, i = _varint(payload, i)
            klen, i = _varint(payload, i)
            key = payload[i:i + klen]
        out.append((off, index, key))
        off += REC_HEADER + (n + 7) // 8 * 8
    return out


def test_corrupt_log_refuses_to_start_then_repair(servers, tmp_path):
    """A damaged record in the middle of a closed segment stops the start with the file and
    --repair; --repair keeps exactly the records before the damaged one, in that segment and
    the ones before it, and drops it and everything after."""
    # 4 KiB segments: 50 SETs of 200 bytes fill several, so the damage hits a closed one.
    s = servers.start({"log-level": "info", "wal-segment-size": "4kb"})
    value = b"v" * 200
    with s.raw() as c:
        for i in range(50):
            assert c.cmd("SET", "k%d" % i, value) == "OK"
    s.stop()
    servers.servers.remove(s)
    group = os.path.join(s.workdir, "data", "wal")  # the node's shared log
    closed = sorted(f for f in os.listdir(group) if f.startswith("segment-"))
    assert len(closed) >= 3, "expected several closed segments with 4 KiB segments: %r" % os.listdir(group)
    seg = closed[1]  # the second: records before it and after it
    recs = segment_records(os.path.join(group, seg))
    assert len(recs) >= 3 and [r[1] for r in recs] == list(range(recs[0][1], recs[0][1] + len(recs)))
    bad_off, bad_index, _ = recs[len(recs) // 2]
    # Every SET in the log, in index order: those below the damaged index must survive.
    logged = [r for f in closed + sorted(f for f in os.listdir(group) if f.startswith("open-"))
              for r in segment_records(os.path.join(group, f))]
    set_keys = [(index, key) for _off, index, key in logged if key is not None]
    assert [k for _i, k in set_keys] == [b"k%d" % i for i in range(50)], set_keys
    survivors = [k for index, k in set_keys if index < bad_index]
    assert 0 < len(survivors) < 50, (bad_index, set_keys)
    path = os.path.join(group, seg)
    with open(path, "r+b") as f:  # flip bytes inside the record's payload (its CRC no longer matches)
        f.seek(bad_off + REC_HEADER + 8)
        b = f.read(16)
        f.seek(bad_off + REC_HEADER + 8)
        f.write(bytes(x ^ 0xFF for x in b))
    bad = Server(s.argv, s.port, s.workdir)
    rc = bad.wait_exit()
    assert rc not in (None, 0), "a damaged log must not start"
    bad.log.close()
    log = bad.log_tail()
    assert "--repair" in log and seg in log, log
    rep = subprocess.run([s.argv[0], "--repair", group], capture_output=True, text=True, timeout=30)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        # Exactly the records before the damaged one: k0 .. k(len(survivors) - 1).
        assert_same_keyspace(keyspace(c), {k: value for k in survivors})


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_turns_read_only_then_recovers(servers, tmp_path):
    """On a full disk writes get -READONLY, reads go on, and writes resume once space is freed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], check=True)
    try:
        s = servers.start({"data-dir": str(mnt / "data")})
        filler = mnt / "filler"
        with open(filler, "wb") as f:  # leave room for the open segment, not for the next one
            f.write(b"\0" * (6 * 1024 * 1024))
        acked, refused = [], None
        with s.raw() as c:
            for i in range(20000):
                r = c.cmd("SET", "f:%d" % i, "z" * 1024)
                if r == "OK":
                    acked.append(i)
                    continue
                refused = r
                break
            assert refused is not None, "the disk never filled"
            assert str(refused).startswith(("READONLY", "UNKNOWN")), refused
            wait_for(lambda: str(c.cmd("SET", "probe", "x")).startswith("READONLY"), 10,
                     "writes to be refused with -READONLY")
            assert c.cmd("GET", "f:%d" % acked[-1]) == b"z" * 1024  # reads go on
            # A transaction of reads is no write either (HY.EXEC_RO).
            assert c.cmd("MULTI") == "OK" and c.cmd("GET", "f:%d" % acked[-1]) == "QUEUED"
            assert c.cmd("EXEC") == [b"z" * 1024]
            # A forced configuration that cannot be written is refused, not pretended.
            assert str(c.cmd("HALYARD", "FORCE-QUORUM", "CONFIRM-DATA-LOSS")).startswith(
                "ERR disk full"), "FORCE-QUORUM on a full disk"
            os.unlink(filler)
            wait_for(lambda: c.cmd("SET", "after", "ok") == "OK", 15,
                     "writes to resume once space is freed")
            for i in acked[:: max(1, len(acked) // 200)] + [acked[-1]]:
                assert c.cmd("GET", "f:%d" % i) == b"z" * 1024, i
        s.stop()
        servers.servers.remove(s)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_durability_setting_at_run_time(servers):
    """`durability` and `fsync-interval-ms` show in CONFIG GET and INFO persistence, change with
    CONFIG SET (out-of-range values refused), and writes made in replicated mode survive a
    SIGKILL (the page cache keeps them) and a graceful restart."""
    s = servers.start()
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "durability") == [b"durability", b"fsync"]
        assert c.cmd("CONFIG", "GET", "fsync-interval-ms") == [b"fsync-interval-ms", b"1000"]
        text = c.cmd("INFO", "persistence").decode()
        assert "durability:fsync\r\n" in text and "fsync_interval_ms:1000\r\n" in text, text
        assert c.cmd("CONFIG", "SET", "durability", "replicated", "fsync-interval-ms", "10000") == "OK"
        for bad in ("0", "10001"):
            r = c.cmd("CONFIG", "SET", "fsync-interval-ms", bad)
            assert str(r).startswith("ERR"), r
        r = c.cmd("CONFIG", "SET", "durability", "sometimes")
        assert str(r).startswith("ERR"), r
        text = c.cmd("INFO", "persistence").decode()
        assert "durability:replicated\r\n" in text and "fsync_interval_ms:10000\r\n" in text, text
        wait_for(lambda: "wal_last_fsync_age_ms:-1\r\n" not in c.cmd("INFO", "persistence").decode(), 10,
                 "the shell to report the last fsync's age")
        for i in range(200):
            c.send(c.encode("SET", "r:%d" % i, i))
        for i in range(200):
            assert c.read() == "OK"
    s.send_signal(signal.SIGKILL)
    s.wait_exit()
    servers.servers.remove(s)
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        assert c.cmd("GET", "r:199") == b"199"
        assert c.cmd("DBSIZE") == 200
        # The restarted process is back at its configured mode (CONFIG SET is not persisted).
        assert c.cmd("CONFIG", "GET", "durability") == [b"durability", b"fsync"]

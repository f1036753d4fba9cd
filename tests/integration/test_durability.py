"""Durability of the server itself: acknowledged writes survive SIGKILL and restarts, a
damaged log refuses to start with a pointer to --repair, and --repair brings it back."""

import os
import signal
import subprocess
import threading

import pytest

from conftest import RawConn, Server, wait_for

pytestmark = pytest.mark.halyard_only


def restart(s):
    """Starts a new process on the same port and data directory as `s` (which has exited)."""
    n = Server(s.argv, s.port, s.workdir)
    n.wait_ready()
    return n


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

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) == 8 and min(acked.values()) >= 50, 20, "writers to make progress")
    s.send_signal(signal.SIGKILL)
    s.wait_exit()
    stop.set()
    for t in threads:
        t.join(10)
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
    with s.raw() as c:
        assert c.cmd("SET", "s", "v") == "OK"
        assert c.cmd("HSET", "h", "a", "1", "b", "2") == 2
        assert c.cmd("INCRBY", "n", "41") == 41
        assert c.cmd("SET", "t", "x", "EX", "1000") == "OK"
        for i in range(300):
            c.send(c.encode("SET", "bulk:%d" % i, "y" * 100))
        for i in range(300):
            assert c.read() == "OK"
    s.stop()
    servers.servers.remove(s)
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        assert c.cmd("GET", "s") == b"v"
        assert c.cmd("HGET", "h", "b") == b"2"
        assert c.cmd("INCR", "n") == 42
        assert 990 <= c.cmd("TTL", "t") <= 1000
        assert c.cmd("DBSIZE") == 304


def test_snapshot_and_log_recover_together(servers):
    """After enough writes to take snapshots, a restart rebuilds the same keyspace."""
    s = servers.start()
    keys = 25000  # above NODE_SNAPSHOT_FORK_KEYS: snapshots are encoded in a forked child
    with s.raw() as c:
        for rnd in range(3):
            for lo in range(0, keys, 5000):
                c.send(b"".join(c.encode("SET", "k:%d" % i, "%d-%d" % (rnd, i)) for i in range(lo, lo + 5000)))
                for _ in range(5000):
                    assert c.read() == "OK"
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
        assert c.cmd("GET", "k:24999") == b"2-24999"
        assert c.cmd("GET", "k:0") == b"2-0"


def test_corrupt_log_refuses_to_start_then_repair(servers, tmp_path):
    """A damaged closed segment stops the start with file, offset and --repair; --repair fixes it."""
    s = servers.start({"log-level": "info"})
    with s.raw() as c:
        for i in range(50):
            assert c.cmd("SET", "k%d" % i, "v" * 200) == "OK"
    s.stop()
    servers.servers.remove(s)
    group = os.path.join(s.workdir, "data", "group-0")
    seg = sorted(f for f in os.listdir(group) if f.startswith("open-") or "-" in f)[0]
    path = os.path.join(group, seg)
    with open(path, "r+b") as f:  # flip bytes in the middle of the written records
        f.seek(2000)
        b = f.read(16)
        f.seek(2000)
        f.write(bytes(x ^ 0xFF for x in b))
    bad = Server(s.argv, s.port, s.workdir)
    rc = bad.wait_exit()
    assert rc not in (None, 0), "a damaged log must not start"
    log = bad.log_tail()
    assert "--repair" in log, log
    rep = subprocess.run([s.argv[0], "--repair", group], capture_output=True, text=True, timeout=30)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    s2 = restart(s)
    servers.servers.append(s2)
    with s2.raw() as c:
        n = c.cmd("DBSIZE")
        assert 0 <= n < 50  # the writes after the damage are cut off; the rest is intact
        for i in range(n):
            assert c.cmd("GET", "k%d" % i) == b"v" * 200


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
            os.unlink(filler)
            wait_for(lambda: c.cmd("SET", "after", "ok") == "OK", 15,
                     "writes to resume once space is freed")
            for i in acked[:: max(1, len(acked) // 200)] + [acked[-1]]:
                assert c.cmd("GET", "f:%d" % i) == b"z" * 1024, i
        s.stop()
        servers.servers.remove(s)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

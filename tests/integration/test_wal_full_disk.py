"""Full-disk behaviour of the durable log with a real, small filesystem (issue 4).

The test mounts a 2 MiB tmpfs (it runs as root), takes half of it with a ballast file, and runs
tests/tools/wal_writer there until the log reports ENOSPC. Then: the writer keeps running
and keeps refusing (no new acknowledgement while the disk is full); the log opens and reads
fine from a second process (reads continue); the ballast is deleted (space freed) and the
writer resumes by itself; finally everything acknowledged is still there and intact.
"""

import os
import select
import shutil
import signal
import subprocess
import time

import pytest

HALYARD_BIN = os.environ.get("HALYARD_BIN", "")
WRITER = os.path.join(os.path.dirname(HALYARD_BIN), "tools", "wal_writer") if HALYARD_BIN else ""

pytestmark = [
    pytest.mark.skipif(
        not WRITER or not os.access(WRITER, os.X_OK), reason="needs HALYARD_BIN and build/tools/wal_writer"
    ),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs"),
]


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


class Lines:
    """Lines of a child's stdout, read straight from the pipe."""

    def __init__(self, proc):
        self.fd = proc.stdout.fileno()
        self.buf = b""

    def next(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def verify(data_dir):
    """Opens the log in a separate process; returns (snapshot, first, last)."""
    out = subprocess.run([WRITER, str(data_dir), "--verify-only"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    snap, first, last = (int(x) for x in out.stdout.decode().split()[1:4])
    return snap, first, last


def test_full_disk_refuses_then_resumes_without_loss(small_fs):
    ballast = small_fs / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\xa5" * (1 << 20))
        os.fsync(f.fileno())
    data_dir = small_fs / "wal"
    proc = subprocess.Popen(
        [WRITER, str(data_dir), "--segment-bytes", "131072", "--batch", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = Lines(proc)
    try:
        assert lines.next(time.monotonic() + 10).startswith("RECOVERED ")
        acked = 0
        # 1. Fill the disk: acknowledgements, then the refusal.
        deadline = time.monotonic() + 30
        while True:
            line = lines.next(deadline)
            assert line is not None, "the disk never filled up"
            kind, index = line.split()
            if kind == "ENOSPC":
                assert int(index) == acked, "refused at %s but acknowledged up to %d" % (index, acked)
                break
            assert kind == "A" and int(index) == acked + 1, line
            acked += 1
        assert acked > 100
        full_at = acked
        # 2. While full, nothing more is acknowledged...
        assert lines.next(time.monotonic() + 0.5) is None
        # ... and reads continue: the log opens and checks out from a second process (the
        # writer is paused so the two never touch the directory at once).
        proc.send_signal(signal.SIGSTOP)
        snap, first, last = verify(data_dir)
        assert last == acked and first <= 1
        proc.send_signal(signal.SIGCONT)
        # 3. Space returns: the writer resumes by itself.
        os.unlink(ballast)
        resumed = 0
        deadline = time.monotonic() + 30
        while resumed < 1000:
            line = lines.next(deadline)
            assert line is not None, "writes did not resume after space was freed"
            kind, index = line.split()
            if kind == "ENOSPC":
                break  # full again: fine, the point was that it resumed
            assert kind == "A" and int(index) == acked + 1, line
            acked += 1
            resumed += 1
        assert resumed > 0
        print("acknowledged before full=%d, after space returned=%d" % (full_at, resumed))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    # 4. Nothing acknowledged was lost, and every record reads back intact.
    snap, first, last = verify(data_dir)
    assert last >= acked and first <= 1

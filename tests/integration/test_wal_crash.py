"""Crash-recovery loop for the durable log with real processes (issue 4).

tests/tools/wal_writer appends records through the log and prints "A <index>" for each one
only after its fdatasync returned. The test SIGKILLs it at random moments, 200 times,
restarting it each time on the same directory, and checks after every restart that every
acknowledged record is still there (the writer itself verifies each recovered record's bytes
and that indices are contiguous, in order) and that the log opens. The seed is printed so a
failing run can be replayed.
"""

import os
import random
import select
import signal
import subprocess
import time

import pytest

RUNS = 200
HALYARD_BIN = os.environ.get("HALYARD_BIN", "")
WRITER = os.path.join(os.path.dirname(HALYARD_BIN), "tools", "wal_writer") if HALYARD_BIN else ""

pytestmark = pytest.mark.skipif(
    not WRITER or not os.access(WRITER, os.X_OK), reason="needs HALYARD_BIN and build/tools/wal_writer"
)


class Lines:
    """Lines of a child's stdout read straight from the pipe (no hidden buffer), so that
    everything the child wrote before it was killed is seen exactly once."""

    def __init__(self, proc):
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.eof = False

    def next(self, deadline):
        """The next complete line, or None at EOF or when the deadline passes."""
        while b"\n" not in self.buf and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            self.eof = not chunk
            self.buf += chunk
        if b"\n" not in self.buf:
            return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def start(data_dir, *args):
    return subprocess.Popen(
        [WRITER, str(data_dir), "--segment-bytes", "65536", "--snapshot-every", "3000", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def recovered(proc, lines):
    """Waits for the RECOVERED line; returns (snapshot, first, last)."""
    line = lines.next(time.monotonic() + 10)
    if line is None or not line.startswith("RECOVERED "):
        proc.kill()
        pytest.fail("wal_writer did not recover: %r %s" % (line, proc.stderr.read().decode()))
    snap, first, last = (int(x) for x in line.split()[1:])
    return snap, first, last


@pytest.mark.parametrize("groups", [1, 4])
def test_sigkill_loop_loses_no_acknowledged_record(tmp_path, groups):
    """With 4 groups every batch goes to each group in ONE write (the node's shared log):
    an acknowledgement holds for every group, and each recovers at least that far."""
    seed = int(os.environ.get("WAL_CRASH_SEED", random.randrange(1 << 30)))
    print("WAL_CRASH_SEED=%d" % seed)
    rng = random.Random(seed)
    data_dir = tmp_path / "wal"
    acked = 0  # highest index acknowledged so far (acks are contiguous from 1)
    lost = 0
    for run in range(RUNS):
        batch = rng.choice([1, 1, 4, 32])
        proc = start(data_dir, "--batch", str(batch), "--groups", str(groups))
        lines = Lines(proc)
        snap, first, last = recovered(proc, lines)
        # Every acknowledged record survived: it is in the log or covered by the snapshot.
        lost += max(0, acked - last)
        assert first <= snap + 1, "run %d: gap between snapshot %d and log %d" % (run, snap, first)
        assert last >= acked, "run %d: acknowledged up to %d, recovered only to %d" % (run, acked, last)
        # Records that were durable but not yet acknowledged when the writer died are fine.
        expect = last + 1
        # Let it write for a random while, reading acknowledgements, then SIGKILL it.
        kill_at = time.monotonic() + rng.uniform(0.0, 0.12)
        while True:
            line = lines.next(kill_at)
            if line is None:
                break
            kind, index = line.split()
            assert kind == "A" and int(index) == expect, "ack out of order: %r, want %d" % (line, expect)
            expect += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Acknowledgements written before the kill but not yet read count too.
        while True:
            line = lines.next(time.monotonic() + 5)
            if line is None:
                break
            kind, index = line.split()
            assert kind == "A" and int(index) == expect, "ack out of order: %r, want %d" % (line, expect)
            expect += 1
        acked = expect - 1
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    # The last restart must still hold everything.
    proc = start(data_dir, "--verify-only", "--groups", str(groups))
    snap, first, last = recovered(proc, Lines(proc))
    assert proc.wait(timeout=10) == 0, proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert last >= acked
    assert lost == 0
    print("runs=%d acknowledged=%d lost=%d" % (RUNS, acked, lost))

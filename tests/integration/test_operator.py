"""Operator-facing defects of issue 20, each tried the way a new operator would: start-up
failures that must end the process, secrets that must stay secret, halyctl and --join with
requirepass, impossible settings, --repair on a data dir, halyctl's own interface, and what
INFO and the logs name."""

import os
import signal
import socket
import subprocess

import pytest

from cluster import SECRET, free_port_pair
from conftest import RawConn, wait_for

pytestmark = pytest.mark.halyard_only

BIN = os.environ.get("HALYARD_BIN", "")


def start(tmp_path, *flags, port=None, name="n1"):
    """Starts halyard with flags in its own work dir; returns (Popen, port, log path)."""
    port = port or free_port_pair()
    work = tmp_path / ("w-%s-%d" % (name, port))
    work.mkdir()
    log = str(work / "server.log")
    argv = [BIN, "--node-id", name, "--bind", "127.0.0.1", "--port", str(port), "--peer-port",
            str(port + 10000), "--data-dir", str(work / "data")] + [str(f) for f in flags]
    with open(log, "wb") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=str(work))
    return p, port, log


def exit_code(p, deadline_s=10):
    """The process's exit code; kills it and fails when it is still running at the deadline."""
    try:
        return p.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("halyard still running %d s after a failed start" % deadline_s)


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


# ---- item 2: a node that cannot start exits ---------------------------------------------------


def test_bootstrap_without_secret_exits_with_the_reason(tmp_path):
    """--bootstrap of two voters without --cluster-secret stops the process (exit 2), port closed."""
    port = free_port_pair()
    p, port, log = start(tmp_path, "--bootstrap",
                         "n1@127.0.0.1:%d,n2@127.0.0.1:%d" % (port + 10000, port + 10001), port=port)
    assert exit_code(p) == 2, read(log)
    assert "needs cluster-secret" in read(log)
    assert refused(port)


def test_peer_port_in_use_exits_with_the_reason(tmp_path):
    """A peer port taken by another process stops the start (exit 1) instead of serving on."""
    port = free_port_pair()
    taken = socket.socket()
    taken.bind(("127.0.0.1", port + 10000))
    taken.listen()
    try:
        p, port, log = start(tmp_path, "--cluster-secret", SECRET, port=port)
        assert exit_code(p) == 1, read(log)
        assert "address already in use" in read(log)
        assert refused(port)
    finally:
        taken.close()


def test_sigterm_while_join_retries_exits_nonzero(tmp_path):
    """SIGTERM while --join is still retrying ends the process with exit 1 and says why."""
    nobody = free_port_pair()
    p, port, log = start(tmp_path, "--cluster-secret", SECRET, "--join", "127.0.0.1:%d" % (nobody + 10000))
    wait_for(lambda: "retrying" in read(log), 10, "the join to retry")
    p.send_signal(signal.SIGTERM)
    assert exit_code(p) == 1, read(log)
    assert "not joined" in read(log)

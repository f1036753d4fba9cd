"""scripts/run.sh, what `make run` starts: a local 3-node cluster on 127.0.0.1:7379-7381, in
clear text and with --tls (a CA and certificates made by the openssl CLI; TLS for clients,
members and HTTPS). Checked with redis-cli, curl and halyctl; stopped with SIGTERM, exit 0."""

import os
import signal
import subprocess
import threading

import pytest

from conftest import wait_for

pytestmark = pytest.mark.halyard_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RunScript:
    def __init__(self, cwd, *args):
        self.lines = []
        self.p = subprocess.Popen(["bash", os.path.join(ROOT, "scripts", "run.sh"),
                                   os.environ["HALYARD_BIN"]] + list(args), cwd=cwd,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=60)
        self.t.join(timeout=10)
        return rc


def node_cmdlines(cwd):
    """The command lines of the halyard nodes running in directory cwd (from /proc)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.path.realpath("/proc/%s/cwd" % pid) != os.path.realpath(cwd):
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if b"--node-id" in cmd:
            out.append(cmd)
    return out


def run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("tls", [False, True])
def test_run_script_starts_a_cluster_and_stops_cleanly(tmp_path, tls):
    cwd = str(tmp_path)
    rs = RunScript(cwd, *(["--tls"] if tls else []))
    try:
        wait_for(lambda: "cluster is up" in rs.text() or rs.p.poll() is not None, 60,
                 "run.sh to report the cluster up")
        assert "cluster is up" in rs.text(), rs.text()
        cli = ["redis-cli", "-p", "7380"]
        if tls:
            cli = ["redis-cli", "--tls", "--cacert", "data/tls/ca.crt", "--cert",
                   "data/tls/client.crt", "--key", "data/tls/client.key", "-p", "7380"]
        assert run(cli + ["SET", "run:k", "v"], cwd).stdout.strip() == "OK"
        assert run(cli + ["GET", "run:k"], cwd).stdout.strip() == "v"
        # The secret is in no command line (readable by every local user), only in the
        # nodes' own config files, mode 600.
        with open(os.path.join(cwd, "data", "cluster-secret")) as f:
            secret = f.read().strip()
        assert len(secret) >= 32
        cmdlines = node_cmdlines(cwd)
        assert len(cmdlines) == 3, cmdlines
        for cmd in cmdlines:
            assert secret.encode() not in cmd, cmd
        for i in (1, 2, 3):
            conf = os.path.join(cwd, "data", "n%d.yaml" % i)
            assert os.stat(conf).st_mode & 0o777 == 0o600
            with open(conf) as f:
                assert secret in f.read()
        halyctl = [os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl"), "-p",
                   "7381", "cluster", "status"]
        curl = ["curl", "-sS", "-w", "\n%{http_code}"]
        if tls:
            halyctl += ["--tls", "--cacert", "data/tls/ca.crt", "--cert", "data/tls/client.crt",
                        "--key", "data/tls/client.key"]
            curl += ["--cacert", "data/tls/ca.crt", "https://127.0.0.1:8379/health/ready"]
            # Nothing in clear text: the client port speaks only TLS, members talk over mTLS.
            assert run(["redis-cli", "-p", "7379", "PING"], cwd).stdout.strip() != "PONG"
            for i in (1, 2, 3):
                with open(os.path.join(cwd, "data", "n%d.log" % i)) as f:
                    assert "(TLS)" in f.read()
        else:
            curl += ["http://127.0.0.1:8379/health/ready"]
        r = run(halyctl, cwd)
        assert r.returncode == 0 and "leader" in r.stdout, r.stdout + r.stderr
        # A partitioned cluster: 16 Raft groups whose leaderships the status counts per node.
        assert "16 partitions" in rs.text(), rs.text()
        assert run(cli + ["CONFIG", "GET", "partitions"], cwd).stdout.split() == ["partitions", "16"]
        assert "leaders per node" in r.stdout, r.stdout
        # The script names the CLI where `make run` builds it (build/, beside the server).
        assert "admin: build/halyctl" in rs.text(), rs.text()
        # Readiness follows elections (a partition's leader may change just after the start):
        # wait for it, with a deadline, and show the node's reason if it never comes.
        last = []

        def ready():
            last[:] = [run(curl, cwd).stdout]
            return last[0].endswith("\n200")

        try:
            wait_for(ready, 30, "node 1 to be ready")
        except BaseException:
            print("last /health/ready answer:", last)
            raise
    finally:
        rc = rs.stop()
    assert rc == 0, rs.text()
    assert "stopped (exit 0)" in rs.text(), rs.text()

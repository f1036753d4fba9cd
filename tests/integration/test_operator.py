"""Operator-facing defects of issue 20, each tried the way a new operator would: start-up
failures that must end the process, secrets that must stay secret, halyctl and --join with
requirepass, impossible settings, --repair on a data dir, halyctl's own interface, and what
INFO and the logs name."""

import os
import signal
import socket
import subprocess
import time

import pytest
import redis

from cluster import SECRET, free_port_pair
from conftest import RawConn, Server, wait_for

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
    # As free_port_pair checked it (and as halyard binds): a connection of an earlier test in
    # TIME_WAIT on this port made a bind without SO_REUSEADDR fail (EADDRINUSE, a CI failure).
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", port + 10000))
    taken.listen()
    try:
        p, port, log = start(tmp_path, "--cluster-secret", SECRET, port=port)
        assert exit_code(p) == 1, read(log)
        assert "address already in use" in read(log)
        assert refused(port)
    finally:
        taken.close()


def test_client_port_in_use_exits_with_the_reason(tmp_path):
    """A client port taken by another process stops the start (exit 1), the log says why."""
    port = free_port_pair()
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as above
    taken.bind(("127.0.0.1", port))
    taken.listen()
    try:
        p, port, log = start(tmp_path, "--cluster-secret", SECRET, port=port)
        assert exit_code(p) == 1, read(log)
        assert "cannot listen on 127.0.0.1:%d" % port in read(log)
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


# ---- item 3: secrets are never shown ----------------------------------------------------------


def test_secrets_are_not_shown_by_config_get_info_or_logs(tmp_path):
    """CONFIG GET (by name and *), INFO and the debug log never carry cluster-secret or requirepass."""
    secret, password, new_password = "s3cr3t-cluster-x", "pw-first-x", "pw-second-x"
    p, port, log = start(tmp_path, "--cluster-secret", secret, "--requirepass", password,
                         "--log-level", "debug")
    try:
        wait_for(lambda: not refused(port), 10, "the node to listen")
        with RawConn(port) as c:
            assert c.cmd("AUTH", "wrong") .startswith("WRONGPASS")
            assert c.cmd("AUTH", password) == "OK"
            for pattern in ("cluster-secret", "requirepass", "*", "*secret*", "*pass*"):
                got = c.cmd("CONFIG", "GET", pattern)
                flat = b" ".join(got)
                assert secret.encode() not in flat and password.encode() not in flat, (pattern, got)
            assert c.cmd("CONFIG", "GET", "cluster-secret") == [b"cluster-secret", b"(redacted)"]
            assert c.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", b"(redacted)"]
            assert c.cmd("CONFIG", "SET", "requirepass", new_password, "maxclients", "0").startswith("ERR")
            assert c.cmd("CONFIG", "SET", "requirepass", new_password) == "OK"
            info = c.cmd("INFO", "everything")
            assert secret.encode() not in info and password.encode() not in info
            assert new_password.encode() not in info
        p.send_signal(signal.SIGTERM)
        assert exit_code(p) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = read(log)
    for s in (secret, password, new_password):
        assert s not in text, s


# ---- item 9: --repair finds the log of a data dir -------------------------------------------


def test_repair_given_the_data_dir_repairs_its_groups(servers):
    """halyard --repair DATA_DIR cuts the damaged log in DATA_DIR/wal; the node starts again."""
    s = servers.start()
    with s.raw() as c:
        for i in range(50):
            assert c.cmd("SET", "k%d" % i, "v" * 200) == "OK"
    s.stop()
    servers.servers.remove(s)
    data = os.path.join(s.workdir, "data")
    group = os.path.join(data, "wal")
    seg = sorted(f for f in os.listdir(group) if f.startswith(("open-", "segment-")))[0]
    with open(os.path.join(group, seg), "r+b") as f:  # flip bytes inside the written records
        f.seek(2000)
        b = f.read(16)
        f.seek(2000)
        f.write(bytes(x ^ 0xFF for x in b))
    rep = subprocess.run([BIN, "--repair", data], capture_output=True, text=True, timeout=30)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "nothing to repair" not in rep.stdout, rep.stdout
    assert group in rep.stdout, rep.stdout
    again = Server(s.argv, s.port, s.workdir)
    servers.servers.append(again)
    again.wait_ready()
    with again.raw() as c:
        n = c.cmd("DBSIZE")
        assert 0 <= n < 50
        for i in range(n):
            assert c.cmd("GET", "k%d" % i) == b"v" * 200


def test_repair_of_a_dir_without_a_log_fails(tmp_path):
    """--repair on a directory holding no log says so and exits 1 (not "nothing to repair", 0)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    rep = subprocess.run([BIN, "--repair", str(empty)], capture_output=True, text=True, timeout=30)
    assert rep.returncode == 1 and "no Raft log" in rep.stderr, rep.stdout + rep.stderr
    missing = str(tmp_path / "missing")
    rep = subprocess.run([BIN, "--repair", missing], capture_output=True, text=True, timeout=30)
    assert rep.returncode == 1 and not os.path.exists(missing), rep.stdout + rep.stderr


# ---- items 4 and 11: halyctl with requirepass, its interface; --join with requirepass -------


def halyctl(*args, env_extra=None, timeout=30):
    exe = os.path.join(os.path.dirname(BIN), "halyctl")
    env = dict(os.environ)
    env.pop("REDISCLI_AUTH", None)
    env.update(env_extra or {})
    return subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def lone_node(tmp_path, password):
    """A lone node with a cluster secret (and requirepass when password is set), leading."""
    p, port, log = start(tmp_path, "--cluster-secret", SECRET, *(["--requirepass", password] if password else []))

    def leads():
        with RawConn(port, timeout=2) as c:
            assert not password or c.cmd("AUTH", password) == "OK"
            return b"raft_role:leader" in c.cmd("INFO", "replication")

    wait_for(leads, 10, "the lone node to lead")
    return p, port, log


def stop(p, log):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    assert exit_code(p) == 0, read(log)


@pytest.fixture
def lone(tmp_path):
    """A lone node with a cluster secret and requirepass 'pw'; stopped (exit 0) at the end."""
    p, port, log = lone_node(tmp_path, "pw")
    yield p, port, log
    stop(p, log)


@pytest.fixture
def lone_open(tmp_path):
    """A lone node with a cluster secret and no password."""
    p, port, log = lone_node(tmp_path, None)
    yield p, port, log
    stop(p, log)


def test_halyctl_authenticates_like_redis_cli(lone):
    """-a, --pass, --user and REDISCLI_AUTH authenticate halyctl; without them NOAUTH, rc 1."""
    _p, port, _log = lone
    r = halyctl("-p", port, "cluster", "status")
    assert r.returncode == 1 and "NOAUTH" in r.stderr, r
    for args, env in ((["-a", "pw"], None), (["--pass", "pw"], None), (["--user", "default", "-a", "pw"], None),
                      ([], {"REDISCLI_AUTH": "pw"})):
        r = halyctl("-p", port, *args, "cluster", "status", env_extra=env)
        assert r.returncode == 0 and "role: leader" in r.stdout, (args, env, r)
    r = halyctl("-p", port, "-a", "wrong", "cluster", "status")
    assert r.returncode == 2 and "AUTH failed" in r.stderr, r


def test_join_with_requirepass_proves_the_cluster_secret(lone, tmp_path):
    """--join to a member with requirepass works with the cluster secret alone; a wrong secret is refused."""
    _p, port, _log = lone
    bad, _bport, blog = start(tmp_path, "--cluster-secret", "not-the-secret", "--join",
                              "127.0.0.1:%d" % (port + 10000), name="n3")
    assert exit_code(bad, 20) == 2, read(blog)
    assert "refused this node's cluster-secret" in read(blog)
    p2, port2, log2 = start(tmp_path, "--cluster-secret", SECRET, "--join", "127.0.0.1:%d" % (port + 10000),
                            name="n2")
    try:
        wait_for(lambda: not refused(port2), 20, "the joined node to listen")
        assert p2.poll() is None, read(log2)
        r = halyctl("-p", port, "-a", "pw", "--json", "cluster", "status")
        assert r.returncode == 0, r
        import json
        assert "n2" in [m["name"] for m in json.loads(r.stdout)["members"]]
    finally:
        if p2.poll() is None:
            p2.send_signal(signal.SIGTERM)
        assert exit_code(p2) == 0, read(log2)


def test_halyctl_help_flags_anywhere_and_json_everywhere(lone):
    """--help goes to stdout (rc 0); options may follow the subcommand; --json answers every subcommand."""
    import json
    _p, port, _log = lone
    r = halyctl("--help")
    assert r.returncode == 0 and "usage: halyctl" in r.stdout and r.stderr == "", r
    r = halyctl("cluster", "status", "--json", "-p", port, "-a", "pw")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["role"] == "leader"
    r = halyctl("snapshot", "-p", port, "-a", "pw", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["result"].startswith("OK")
    r = halyctl("cluster", "status", "--to", "n2", "-p", port, "-a", "pw")
    assert r.returncode == 2 and "usage" in r.stderr, r
    r = halyctl("cluster", "status", "--frobnicate", "-p", port, "-a", "pw")
    assert r.returncode == 2, r
    r = halyctl("-p", port, "-a", "pw", "node", "drain", "--json")
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["node"] == "stopped"


def test_sigterm_during_a_clean_stop_still_exits_0(lone_open):
    """SIGTERMs sent again and again while a drained node stops never turn its exit 0 into a kill."""
    p, port, log = lone_open
    with RawConn(port, timeout=5) as c:
        c.sock.sendall(b"*2\r\n$7\r\nHALYARD\r\n$5\r\nDRAIN\r\n")
        deadline = time.monotonic() + 10
        sent = 0
        while p.poll() is None and time.monotonic() < deadline:
            try:
                p.send_signal(signal.SIGTERM)
                sent += 1
            except ProcessLookupError:
                break
            time.sleep(0.0005)
    assert exit_code(p) == 0, (sent, read(log))


def test_halyctl_prints_progress_while_it_waits(lone_open):
    """cluster join shows the member's answer while it waits for the new member (output not held back)."""
    import select
    _p, port, _log = lone_open
    c = redis.Redis(host="127.0.0.1", port=port)
    pipe = c.pipeline(transaction=False)
    for i in range(600):  # a log longer than the promotion slack: the absent node stays a learner
        pipe.set("k%d" % i, "v")
    assert all(pipe.execute())
    c.close()
    exe = os.path.join(os.path.dirname(BIN), "halyctl")
    absent = free_port_pair()
    h = subprocess.Popen([exe, "-p", str(port), "cluster", "join",
                          "z9@127.0.0.1:%d" % (absent + 10000)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([h.stdout], [], [], 10)
        assert ready, "halyctl printed nothing within 10 s"
        line = h.stdout.readline().decode()
        assert line.startswith("OK"), line
    finally:
        if h.poll() is None:
            h.kill()
        h.wait()


# ---- item 8: impossible settings are refused at start ----------------------------------------


def test_impossible_settings_stop_the_start(tmp_path):
    """heartbeat >= election timeout / 2 (flags or YAML, with FILE:LINE) and duplicate YAML keys exit 2."""
    p, _port, log = start(tmp_path, "--heartbeat-ms", 500, "--election-timeout-ms", 300)
    assert exit_code(p) == 2, read(log)
    assert "heartbeat-ms (500) must be below half of election-timeout-ms (300)" in read(log)
    cfg = tmp_path / "halyard.yaml"
    cfg.write_text("election-timeout-ms: 300\nheartbeat-ms: 150\n")
    p, _port, log = start(tmp_path, "--config", cfg)
    assert exit_code(p) == 2, read(log)
    assert "%s:2: heartbeat-ms (150)" % cfg in read(log)
    dup = tmp_path / "dup.yaml"
    dup.write_text("hz: 10\nmaxmemory: 1mb\nhz: 20\n")
    p, _port, log = start(tmp_path, "--config", dup)
    assert exit_code(p) == 2, read(log)
    assert "%s:3: duplicate setting 'hz'" % dup in read(log)
    indented = tmp_path / "indented.yaml"
    indented.write_text("hz: 10\n  maxmemory: 1mb\n")
    p, _port, log = start(tmp_path, "--config", indented)
    assert exit_code(p) == 2, read(log)
    assert "%s:2: this line is indented" % indented in read(log)


# ---- item 12: names in INFO and the log; "drained" says what happened -----------------------


def test_info_and_logs_name_nodes_and_drain_says_what_happened(tmp_path_factory):
    """INFO raft_leader and Raft's log lines use node names; only a drained leader logs a hand-over."""
    import re
    from cluster import Cluster, info
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    try:
        li = c.leader()
        wait_for(lambda: all(info(p)["raft_leader"] == c.names[li] for p in c.ports), 10,
                 "every node to name the leader %s" % c.names[li])
        wait_for(lambda: ("raft %s: leader of term" % c.names[li]) in read(c.nodes[li].log_path), 10,
                 "the leader's log line naming it")
        for s in c.nodes:
            assert not re.search(r"raft \d+:", read(s.log_path)), read(s.log_path)
        fi = (li + 1) % 3
        r = halyctl("-p", c.ports[fi], "node", "drain")
        assert r.returncode == 0, r
        assert c.nodes[fi].wait_exit() == 0
        c.nodes[fi]._stopped = True
        text = read(c.nodes[fi].log_path)
        assert "did not lead" in text and "handed over" not in text, text
        r = halyctl("-p", c.ports[li], "node", "drain")
        assert r.returncode == 0, r
        assert c.nodes[li].wait_exit() == 0
        c.nodes[li]._stopped = True
        assert "drained: leadership handed over" in read(c.nodes[li].log_path)
    finally:
        errors = c.stop_all()
    assert not errors, errors


def test_readme_redis_cluster_form_works(lone_open):
    """The README's redis.cluster.RedisCluster(...) call, as written, talks to a node (redis-py 4.3)."""
    import re
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    calls = re.findall(r"redis\.cluster\.RedisCluster\(([^)]*)\)", readme)
    assert calls, "README shows no RedisCluster call"
    _p, port, _log = lone_open
    for args in calls:
        rc = eval("redis.cluster.RedisCluster(%s)" % args.replace("7379", str(port)),  # noqa: S307
                  {"redis": redis})
        try:
            assert rc.set("readme-key", "v") is True
            assert rc.get("readme-key") == b"v"
        finally:
            rc.close()


def test_rolling_restart_as_documented(tmp_path_factory):
    """docs/operations.md's rolling restart: drain a member, start it, the leader's status shows it caught up."""
    import json
    from cluster import Cluster
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    try:
        li = c.leader()
        r = c.nodes[li].client(decode_responses=True)
        for i in range(50):
            r.set("k%d" % i, i)
        fi = (li + 1) % 3
        assert halyctl("-p", c.ports[fi], "node", "drain").returncode == 0
        assert c.nodes[fi].wait_exit() == 0
        c.nodes[fi]._stopped = True
        for i in range(50, 100):  # writes go on while it is down
            r.set("k%d" % i, i)
        os.rename(c.nodes[fi].log_path, c.nodes[fi].log_path + ".1")
        c.start(fi)

        def caught_up():
            st = json.loads(halyctl("-p", c.ports[li], "--json", "cluster", "status").stdout)
            m = [m for m in st["members"] if m["name"] == c.names[fi]][0]
            return m["role"] == "follower" and m["lag_entries"] <= 2 and m["last_contact_ms"] < 1000

        wait_for(caught_up, 20, "the leader to show %s caught up" % c.names[fi])
        with RawConn(c.ports[fi]) as conn:
            assert conn.cmd("READONLY") == "OK"
            assert conn.cmd("GET", "k99") == b"99"
        r.close()
        # --json works for the waiting subcommands too: failover answers with the new leader.
        out = halyctl("-p", c.ports[li], "cluster", "failover", "--to", c.names[fi], "--json")
        assert out.returncode == 0, out
        assert json.loads(out.stdout)["leader"] == c.names[fi]
    finally:
        errors = c.stop_all()
    assert not errors, errors


def test_sigterm_as_soon_as_the_client_port_opens_stops_cleanly(tmp_path):
    """A SIGTERM that comes once the client port accepts connections but before the loop's
    signal handlers are installed (the peer transport, HTTP and the rest still being set up)
    stops the node cleanly, exit 0. The default action used to kill it (exit -15; a CI run of
    test_join_with_requirepass_proves_the_cluster_secret hit that window): sent the moment the
    port opened, 30 starts out of 30 died that way."""
    for i in range(5):
        p, port, log = start(tmp_path, "--cluster-secret", SECRET, name="s%d" % i)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert p.poll() is None and time.monotonic() < deadline, read(log)
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.0005)  # polls the port: its opening is the moment under test
            p.send_signal(signal.SIGTERM)
            assert exit_code(p, 30) == 0, read(log)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

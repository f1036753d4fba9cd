"""ACL users on a real 3-node cluster: a user made on a follower works on every member, NOPERM
for denied commands and keys, failed AUTH in ACL LOG, users kept across a whole-cluster restart
(snapshot + log), with python3-redis and redis-cli."""

import subprocess

import pytest
import redis

from cluster import Cluster, info
from conftest import RawConn, RespError, wait_for

pytestmark = pytest.mark.halyard_only

NOPERM_CMD = "NOPERM this user has no permissions to run the '%s' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"


@pytest.fixture
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory, 3)
    c.start_all()
    yield c
    errors = c.stop_all()
    assert not errors, errors


def users(port):
    with RawConn(port, timeout=2.0) as c:
        return sorted(u.decode() for u in c.cmd("ACL", "USERS"))


def wait_users(cl, want):
    for i in range(len(cl.nodes)):
        wait_for(lambda i=i: set(want) <= set(users(cl.ports[i])), 10,
                 "%s to hold users %s" % (cl.names[i], want))


def follower_of(cl):
    li = cl.leader()
    fi = (li + 1) % 3
    wait_for(lambda: info(cl.ports[fi])["raft_leader"] != "", 10, "the follower to learn who leads")
    return li, fi


def test_user_made_on_a_follower_holds_on_every_node(cluster):
    """ACL SETUSER on a follower is forwarded, replicated, and the user works on every member."""
    li, fi = follower_of(cluster)
    with RawConn(cluster.ports[fi]) as f:
        assert f.cmd("ACL", "SETUSER", "alice", "on", ">s3cret", "~app:*", "+@read", "+set") == "OK"
    # Each member reads its own replica of the users: the follower has alice once it applied
    # the entry (the leader answered as soon as a majority had it).
    wait_users(cluster, ["alice", "default"])
    with RawConn(cluster.ports[fi]) as f:
        line = [u.decode() for u in f.cmd("ACL", "LIST") if u.startswith(b"user alice")][0]
        assert ">s3cret" not in line and "s3cret" not in line  # hashed, never in the clear
        assert line.startswith("user alice on #") and line.endswith("~app:* resetchannels -@all +@read +set")
    for i, port in enumerate(cluster.ports):
        r = redis.Redis(port=port, username="alice", password="s3cret", socket_timeout=5)
        assert r.set("app:%d" % i, "v") is True
        assert r.get("app:%d" % i) == b"v"
        with RawConn(port) as c:  # as default
            assert c.cmd("ACL", "DRYRUN", "alice", "GET", "app:1") == "OK"
            assert c.cmd("ACL", "DRYRUN", "alice", "GET", "x") == b"This user has no permissions to access the 'x' key"
        with pytest.raises(redis.exceptions.NoPermissionError) as e:
            r.delete("app:%d" % i)
        assert str(e.value) == "this user has no permissions to run the 'del' command"
        with pytest.raises(redis.exceptions.NoPermissionError) as e:
            r.set("other", "v")
        assert str(e.value) == NOPERM_KEY[len("NOPERM "):]
        r.close()
    # A change (here: off) also reaches every member; then alice cannot log in anywhere.
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "SETUSER", "alice", "off") == "OK"
    for port in cluster.ports:
        def refused(port=port):
            with RawConn(port, timeout=2.0) as c:
                r = c.cmd("AUTH", "alice", "s3cret")
                return isinstance(r, RespError) and r.startswith("WRONGPASS")
        wait_for(refused, 10, "alice to be refused on port %d" % port)
    # DELUSER on a follower: gone everywhere.
    with RawConn(cluster.ports[(fi + 1) % 3]) as c:
        assert c.cmd("ACL", "DELUSER", "alice") == 1
    for port in cluster.ports:
        wait_for(lambda port=port: users(port) == ["default"], 10, "alice to be deleted")


def test_noperm_and_failed_auth_in_acl_log(cluster):
    """NOPERM with Redis 7.0's texts for commands and keys; failed AUTH (redis-cli, redis-py,
    HELLO AUTH) and denials are counted in the node's ACL LOG."""
    li, fi = follower_of(cluster)
    port = cluster.ports[fi]
    with RawConn(port) as c:
        assert c.cmd("ACL", "SETUSER", "bob", "on", ">pw", "%R~ro:*", "~rw:*", "+@all", "-@dangerous") == "OK"
        assert c.cmd("ACL", "LOG", "RESET") == "OK"
    wait_users(cluster, ["bob"])
    with RawConn(port) as c:
        assert c.cmd("AUTH", "bob", "pw") == "OK"
        assert c.cmd("ACL", "WHOAMI") == b"bob"
        assert c.cmd("GET", "ro:1") is None
        assert c.cmd("SET", "rw:1", "x") == "OK"
        assert c.cmd("SET", "ro:1", "x") == NOPERM_KEY
        assert c.cmd("FLUSHALL") == NOPERM_CMD % "flushall"
        assert c.cmd("KEYS", "*") == NOPERM_CMD % "keys"
    for _ in range(3):
        out = subprocess.run(["redis-cli", "-p", str(port), "--user", "bob", "--pass", "wrong",
                              "--no-auth-warning", "PING"], capture_output=True, text=True, timeout=10)
        assert "WRONGPASS" in out.stdout + out.stderr
    with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS"):
        redis.Redis(port=port, username="nobody", password="x", socket_timeout=5).ping()
    with RawConn(port) as c:
        r = c.cmd("HELLO", "3", "AUTH", "bob", "nope")
        assert isinstance(r, RespError) and r.startswith("WRONGPASS")
        log = c.cmd("ACL", "LOG")
    entries = [dict(zip([k.decode() for k in e[::2]], e[1::2])) for e in log]
    by = {(e["reason"].decode(), e["object"].decode(), e["username"].decode()): e for e in entries}
    assert int(by[("auth", "AUTH", "bob")]["count"]) == 4  # three redis-cli runs + HELLO AUTH
    assert int(by[("auth", "AUTH", "nobody")]["count"]) == 1
    assert int(by[("key", "ro:1", "bob")]["count"]) == 1
    assert int(by[("command", "flushall", "bob")]["count"]) == 1
    assert int(by[("command", "keys", "bob")]["count"]) == 1
    assert all(e["context"] == b"toplevel" and b"addr=" in e["client-info"] for e in entries)
    # Per node, as Redis's: the leader saw none of these.
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "LOG") == []


def test_users_survive_a_whole_cluster_restart(cluster):
    """Users from a snapshot and users only in the log are both back after every node restarts."""
    li = cluster.leader()
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "SETUSER", "snap", "on", ">a", "~*", "+@all") == "OK"
        assert c.cmd("ACL", "SETUSER", "default", "-flushall") == "OK"
        assert c.cmd("SET", "k", "v") == "OK"
    wait_users(cluster, ["snap"])
    for port in cluster.ports:
        with RawConn(port) as c:
            assert c.cmd("HALYARD", "SNAPSHOT").startswith("OK")
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "SETUSER", "logged", "on", ">b", "%R~*", "+get") == "OK"
    wait_users(cluster, ["logged", "snap"])
    errors = cluster.stop_all()
    assert not errors, errors
    cluster.start_all()
    cluster.leader()
    wait_users(cluster, ["default", "logged", "snap"])
    for port in cluster.ports:
        r = redis.Redis(port=port, username="logged", password="b", socket_timeout=5)
        assert r.get("k") == b"v"
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.set("k", "w")
        r.close()
        r = redis.Redis(port=port, username="snap", password="a", socket_timeout=5)
        assert r.get("k") == b"v"
        r.close()
        with RawConn(port) as c:
            assert c.cmd("FLUSHALL") == NOPERM_CMD % "flushall"  # default's rule survived too


def test_halyctl_as_an_acl_user(cluster):
    """halyctl --user speaks ACL users: an operator user runs cluster status; a user without
    @admin is refused with NOPERM."""
    import os
    li = cluster.leader()
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "SETUSER", "ops", "on", ">opspw", "+@all", "~*") == "OK"
        assert c.cmd("ACL", "SETUSER", "app", "on", ">apppw", "+@read", "~*") == "OK"
    wait_users(cluster, ["app", "ops"])
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")

    def run(user, pw):
        return subprocess.run([exe, "-p", str(cluster.ports[li]), "--user", user, "-a", pw,
                               "cluster", "status"], capture_output=True, text=True, timeout=60)
    r = run("ops", "opspw")
    assert r.returncode == 0 and "leader" in r.stdout, r.stdout + r.stderr
    r = run("app", "apppw")
    assert r.returncode != 0 and "NOPERM" in r.stdout + r.stderr, r.stdout + r.stderr
    r = run("ops", "wrong")
    assert r.returncode != 0 and "WRONGPASS" in r.stdout + r.stderr, r.stdout + r.stderr


def test_libhalyard_as_an_acl_user(cluster):
    """libhalyard's username + password: every INCR applied as the ACL user (on a follower, so
    through the forward path); a wrong password ends every request with HALYARD_AUTH (the
    server's WRONGPASS), and a key outside the user's patterns gets the server's NOPERM back."""
    import os
    li, fi = follower_of(cluster)
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("ACL", "SETUSER", "loader", "on", ">lpw", "+@all", "~ctr:*") == "OK"
    wait_users(cluster, ["loader"])
    exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "tools", "hy_client_load")

    def load(key, n, *extra):
        r = subprocess.run([exe, "127.0.0.1:%d" % cluster.ports[fi], key, str(n), "--timeout-ms",
                            "2000", "--no-routing"] + list(extra),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        done = [l for l in r.stdout.splitlines() if l.startswith("done ")][0]
        out = {k: int(v) for k, v in (kv.split("=") for kv in done.split()[1:])}
        out["refused"] = r.stdout.count("authentication refused: WRONGPASS")
        out["noperm"] = r.stdout.count("error reply: NOPERM")
        return out

    done = load("ctr:a", 100, "--user", "loader", "--password", "lpw")
    assert done["ok"] == 100 and done["last"] == 100, done
    done = load("ctr:a", 3, "--user", "loader", "--password", "wrong")
    assert done["refused"] == 3 and done["ok"] == 0, done
    done = load("other", 3, "--user", "loader", "--password", "lpw")
    assert done["error"] == 3 and done["noperm"] == 3 and done["ok"] == 0, done
    with RawConn(cluster.ports[li]) as c:
        assert c.cmd("GET", "ctr:a") == b"100" and c.cmd("GET", "other") is None

"""aclfile, ACL LOAD and ACL SAVE (Redis's ACL file format) over replicated users: a node
started with an aclfile loads it into the cluster; ACL LOAD replaces every user at once or
changes nothing; ACL SAVE writes the users with hashed passwords; a broken file stops the start
with the file and line; with python3-redis on one node and on a 3-node cluster."""

import hashlib
import os

import pytest
import redis

from cluster import Cluster
from conftest import RawConn, free_port, wait_for

pytestmark = pytest.mark.halyard_only

FILE = """# the application's users
user alice on >wonderland ~app:* +@read +set

user bob on #%s ~* +@all
""" % hashlib.sha256(b"builder").hexdigest()


def log_text(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def users(port):
    with RawConn(port, timeout=2.0) as c:
        return sorted(u.decode() for u in c.cmd("ACL", "USERS"))


def can_auth(port, user, password):
    with RawConn(port, timeout=5.0) as c:
        return c.cmd("AUTH", user, password) == "OK"


def test_aclfile_load_and_save_on_one_node(servers, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text(FILE)
    s = servers.start({"aclfile": str(path)})
    wait_for(lambda: users(s.port) == ["alice", "bob", "default"], 10, "the aclfile's users")
    assert can_auth(s.port, "alice", "wonderland") and can_auth(s.port, "bob", "builder")
    alice = redis.Redis(port=s.port, username="alice", password="wonderland", decode_responses=True)
    assert alice.set("app:1", "x") and alice.get("app:1") == "x"
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.set("other", "x")

    c = s.client()
    assert c.execute_command("ACL", "SETUSER", "carol", "on", ">queen", "+@read", "~*") == "OK"
    assert c.execute_command("ACL", "SAVE") == "OK"
    saved = path.read_text()
    assert "user carol on #%s" % hashlib.sha256(b"queen").hexdigest() in saved, saved
    assert "queen" not in saved.replace(hashlib.sha256(b"queen").hexdigest(), "")
    assert "user default " in saved

    # A wrong line: nothing changes, and the error names the file and line.
    path.write_text(saved + "user dave on +nosuchcommand\n")
    with pytest.raises(redis.ResponseError, match=r"users\.acl:\d+: .*nosuchcommand"):
        c.execute_command("ACL", "LOAD")
    assert users(s.port) == ["alice", "bob", "carol", "default"]
    path.write_text("user alice on >rabbit ~* +@all\nuser\n")
    with pytest.raises(redis.ResponseError, match=r"users\.acl:2: a user line needs a name"):
        c.execute_command("ACL", "LOAD")
    path.write_text("user alice on >rabbit\nuser alice off\n")
    with pytest.raises(redis.ResponseError, match="duplicate user 'alice'"):
        c.execute_command("ACL", "LOAD")

    # A good file replaces every user at once: bob and carol are gone, alice has a new password.
    path.write_text("user alice on >rabbit ~* +@all\n")
    assert c.execute_command("ACL", "LOAD") == "OK"
    assert users(s.port) == ["alice", "default"]
    assert can_auth(s.port, "alice", "rabbit") and not can_auth(s.port, "alice", "wonderland")
    assert not can_auth(s.port, "bob", "builder")


def test_without_aclfile_load_and_save_say_so(shared_server):
    c = shared_server.client()
    for sub in ("LOAD", "SAVE"):
        with pytest.raises(redis.ResponseError, match="not configured to use an ACL file"):
            c.execute_command("ACL", sub)


def test_broken_aclfile_stops_the_start(servers, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user alice on >x\nuser bob on +@nosuchcategory\n")
    s = servers.start({"aclfile": str(path)}, ready=False)
    assert s.wait_exit(20) not in (None, 0)
    assert "users.acl:2" in s.log_tail() and "nosuchcategory" in s.log_tail(), s.log_tail()
    s._stopped = True
    missing = servers.start({"aclfile": str(tmp_path / "missing.acl")}, ready=False)
    assert missing.wait_exit(20) not in (None, 0)
    assert "missing.acl" in missing.log_tail(), missing.log_tail()
    missing._stopped = True


def test_aclfile_on_one_member_reaches_every_member(tmp_path_factory, tmp_path):
    """n2 and n3 start with an aclfile (n1 without): its users hold on every member. ACL LOAD
    on n3 (its own file) replaces them everywhere; after a whole-cluster restart the members
    load their files again, as Redis does at start."""
    a = tmp_path / "n2.acl"
    a.write_text(FILE)
    b = tmp_path / "n3.acl"
    b.write_text("user erin on >sunrise ~* +@all\n")
    c = Cluster(tmp_path_factory, 3)
    base_argv = c.argv

    def argv(i):
        extra = {1: ["--aclfile", str(a)], 2: ["--aclfile", str(b)]}.get(i, [])
        return base_argv(i) + extra
    c.argv = argv
    b_text = b.read_text()
    b.write_text(FILE)  # n3 loads its file at start too: the same users to begin with
    try:
        c.start_all()
        # Both start-up loads must have been applied before ACL LOAD: one still in flight (a
        # leader change retries it) would land after it and put alice and bob back.
        for i in (1, 2):
            wait_for(lambda i=i: "aclfile: done: " in log_text(c.nodes[i].log_path), 15,
                     "%s's start-up load to be answered" % c.names[i])
        for i in range(3):
            wait_for(lambda i=i: users(c.ports[i]) == ["alice", "bob", "default"], 15,
                     "%s to hold the aclfile's users" % c.names[i])
        b.write_text(b_text)
        with RawConn(c.ports[2]) as r:
            assert r.cmd("ACL", "LOAD") == "OK"
        for i in range(3):
            wait_for(lambda i=i: users(c.ports[i]) == ["default", "erin"], 15,
                     "%s to hold n3's file's users" % c.names[i])
        assert can_auth(c.ports[0], "erin", "sunrise")
        # A whole-cluster restart: n2 and n3 load their files again (as Redis does at start);
        # both now say erin, so every member ends with erin.
        a.write_text(b_text)
        errors = c.stop_all()
        assert not errors, errors
        c.start_all()
        for i in range(3):
            wait_for(lambda i=i: users(c.ports[i]) == ["default", "erin"], 15,
                     "%s to hold the users after the restart" % c.names[i])
    finally:
        errors = c.stop_all()
        assert not errors, errors

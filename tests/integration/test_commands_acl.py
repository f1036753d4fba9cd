"""ACL commands on one server, with texts checked against Redis 7.0 (run with HY_TARGET=redis to
see Redis give the same replies): SETUSER / GETUSER / LIST / USERS / WHOAMI / CAT / DRYRUN /
DELUSER / LOG, AUTH user pass, HELLO 3 AUTH, NOPERM."""

import hashlib

import pytest

from conftest import RespError

PW_HASH = hashlib.sha256(b"s3cret").hexdigest()


@pytest.fixture
def raw(servers):
    s = servers.start()
    with s.raw() as c:
        yield c


def test_setuser_getuser_list(raw):
    """A user's rules read back as Redis words them: ACL LIST lines and GETUSER's fields."""
    assert raw.cmd("ACL", "SETUSER", "alice", "on", ">s3cret", "~app:*", "%R~ro:*", "+@read",
                   "-keys", "+set") == "OK"
    lines = [l.decode() for l in raw.cmd("ACL", "LIST")]
    assert "user alice on #%s ~app:* %%R~ro:* resetchannels -@all +@read -keys +set" % PW_HASH in lines
    assert "user default on nopass ~* &* +@all" in [l.replace(" sanitize-payload", "") for l in lines]
    assert sorted(raw.cmd("ACL", "USERS")) == [b"alice", b"default"]
    u = raw.cmd("ACL", "GETUSER", "alice")
    fields = dict(zip([k.decode() for k in u[::2]], u[1::2]))
    assert fields["flags"] == [b"on"]
    assert fields["passwords"] == [PW_HASH.encode()]
    assert fields["commands"] == b"-@all +@read -keys +set"
    assert fields["keys"] == b"~app:* %R~ro:*"
    assert fields["channels"] == b""
    assert raw.cmd("ACL", "GETUSER", "nobody") is None
    assert raw.cmd("ACL", "WHOAMI") == b"default"


def test_setuser_errors(raw):
    """Bad rules are refused with Redis's words and change nothing."""
    r = raw.cmd("ACL", "SETUSER", "bob", "on", "+nosuchcommand")
    assert r == ("ERR Error in ACL SETUSER modifier '+nosuchcommand': Unknown command or "
                 "category name in ACL")
    r = raw.cmd("ACL", "SETUSER", "bob", "#abc")
    assert isinstance(r, RespError) and r.startswith(
        "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters")
    r = raw.cmd("ACL", "SETUSER", "bob", "bogus")
    assert r == "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"
    assert raw.cmd("ACL", "GETUSER", "bob") is None
    assert raw.cmd("ACL", "DELUSER", "default") == "ERR The 'default' user cannot be removed"
    assert raw.cmd("ACL", "DELUSER", "nobody") == 0


def test_auth_noperm_dryrun_and_log(raw):
    """AUTH user pass switches users; NOPERM texts for a command and a key; DRYRUN; ACL LOG."""
    assert raw.cmd("ACL", "SETUSER", "carol", "on", ">pw", "~k:*", "+get", "+set", "+acl|whoami") == "OK"
    assert raw.cmd("ACL", "DRYRUN", "carol", "GET", "k:1") == "OK"
    assert raw.cmd("ACL", "DRYRUN", "carol", "DEL", "k:1") == \
        b"This user has no permissions to run the 'del' command"
    assert raw.cmd("ACL", "DRYRUN", "carol", "GET", "x") == \
        b"This user has no permissions to access the 'x' key"
    assert raw.cmd("AUTH", "carol", "bad") == \
        "WRONGPASS invalid username-password pair or user is disabled."
    assert raw.cmd("AUTH", "carol", "pw") == "OK"
    assert raw.cmd("ACL", "WHOAMI") == b"carol"
    assert raw.cmd("SET", "k:1", "v") == "OK"
    assert raw.cmd("SET", "x", "v") == \
        "NOPERM this user has no permissions to access one of the keys used as arguments"
    assert raw.cmd("DEL", "k:1") == "NOPERM this user has no permissions to run the 'del' command"
    assert raw.cmd("AUTH", "default", "anything") == "OK"  # default is nopass
    log = raw.cmd("ACL", "LOG")
    entries = [dict(zip([k.decode() for k in e[::2]], e[1::2])) for e in log]
    assert [(e["reason"], e["object"], e["username"]) for e in entries] == [
        (b"command", b"del", b"carol"), (b"key", b"x", b"carol"), (b"auth", b"AUTH", b"carol")]
    assert all(e["context"] == b"toplevel" and int(e["count"]) == 1 for e in entries)
    assert raw.cmd("ACL", "LOG", "RESET") == "OK" and raw.cmd("ACL", "LOG") == []


def test_hello_auth_and_cat(raw):
    """HELLO 3 AUTH user pass; ACL CAT lists Redis's categories and a category's commands."""
    assert raw.cmd("ACL", "SETUSER", "dan", "on", ">pw", "+@all", "~*") == "OK"
    r = raw.cmd("HELLO", "3", "AUTH", "dan", "nope")
    assert isinstance(r, RespError) and r.startswith("WRONGPASS")
    hello = raw.cmd("HELLO", "2", "AUTH", "dan", "pw")
    assert b"proto" in hello
    assert raw.cmd("ACL", "WHOAMI") == b"dan"
    cats = {c.decode() for c in raw.cmd("ACL", "CAT")}
    assert {"keyspace", "read", "write", "string", "hash", "list", "set", "sortedset", "admin",
            "fast", "slow", "dangerous", "connection"} <= cats
    assert {b"get", b"mget", b"hget"} <= set(raw.cmd("ACL", "CAT", "read"))
    assert b"flushall" in raw.cmd("ACL", "CAT", "dangerous")
    assert raw.cmd("ACL", "CAT", "nope") == "ERR Unknown category 'nope'"

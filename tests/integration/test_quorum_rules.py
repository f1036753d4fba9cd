"""Split-brain protection rules (quorum-rules) on a real 3-node cluster: with a member killed,
a rule needing 3 live members refuses the writes (or reads, or keys) it covers with
-QUORUM <rule> required=3 actual=2 while the others go on; /health and INFO show the rules and
their state; the member restarted, everything is served again; bad rules are refused."""

import json
import os
import subprocess
import urllib.request

import pytest

from cluster import Cluster, info
from conftest import RawConn, RespError, wait_for

pytestmark = pytest.mark.halyard_only


def health(c, i):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % c.http_port(i), timeout=2) as r:
        return json.loads(r.read())


def test_rules_refuse_what_they_cover_while_members_are_down(tmp_path_factory, clusters):
    rules = "all3:3:write,users:3:read:user:*,two:2:read-write"
    c = Cluster(tmp_path_factory, 3, extra={"quorum-rules": rules})
    clusters.append(c)
    c.start_all()
    li = c.leader()
    victim = (li + 1) % 3
    with RawConn(c.ports[li]) as r:
        assert r.cmd("SET", "user:1", "a") == "OK"
        assert r.cmd("SET", "order:1", "b") == "OK"
        wait_for(lambda: {q["name"]: q["ok"] for q in health(c, li)["quorumRules"]} ==
                 {"all3": True, "users": True, "two": True}, 10, "every rule satisfied")
        c.kill(victim)

        def refused():
            got = r.cmd("SET", "order:2", "x")
            return isinstance(got, RespError) and got
        got = wait_for(refused, 10, "the write rule to refuse once the member is failed")
        assert got == "QUORUM all3 required=3 actual=2", got
        assert r.cmd("GET", "user:1") == "QUORUM users required=3 actual=2"
        assert r.cmd("MGET", "order:1", "user:1") == "QUORUM users required=3 actual=2"
        assert r.cmd("GET", "order:1") == b"b"  # no rule covers this read
        assert r.cmd("INFO", "cluster") is not None  # never refused: operators can see why
        kv = info(c.ports[li], "cluster")
        assert kv["quorum_live_members"] == "2" and kv["quorum_rules"] == "3", kv
        assert kv["quorum_rule_all3"] == "type=write,pattern=*,required=3,actual=2,ok=0"
        assert kv["quorum_rule_two"].endswith("ok=1")
        exe = os.path.join(os.path.dirname(os.environ["HALYARD_BIN"]), "halyctl")
        out = subprocess.run([exe, "-p", str(c.ports[li]), "cluster", "quorum"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out  # a rule refuses: scripts see it in the exit code
        assert "all3" in out.stdout and "REFUSING" in out.stdout, out.stdout
        out = subprocess.run([exe, "-p", str(c.ports[li]), "--json", "cluster", "quorum"],
                             capture_output=True, text=True, timeout=30)
        doc = json.loads(out.stdout)
        assert doc["liveMembers"] == 2 and [q["ok"] for q in doc["rules"]] == [False, False, True]
        # /health renders the snapshot the loop publishes every cron tick (100 ms).
        want = {"name": "users", "type": "read", "pattern": "user:*", "required": 3, "actual": 2,
                "ok": False}
        wait_for(lambda: {q["name"]: q for q in health(c, li)["quorumRules"]}["users"] == want, 5,
                 "/health to show the users rule refusing")
        # Changed at run time: the rule goes, the write is served.
        assert r.cmd("CONFIG", "SET", "quorum-rules", "two:2:read-write") == "OK"
        assert r.cmd("SET", "order:2", "x") == "OK"
        assert r.cmd("CONFIG", "SET", "quorum-rules", rules) == "OK"
        err = r.cmd("CONFIG", "SET", "quorum-rules", "x:2:sometimes")
        assert isinstance(err, RespError) and "TYPE must be read, write or read-write" in err
        c.start(victim)
        wait_for(lambda: r.cmd("SET", "order:3", "y") == "OK", 20, "writes served again")
        assert r.cmd("GET", "user:1") == b"a"
        out = subprocess.run([exe, "-p", str(c.ports[li]), "cluster", "quorum"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "REFUSING" not in out.stdout, out

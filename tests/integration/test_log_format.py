"""log-format: json writes one JSON object per line (issue 14), and CONFIG SET switches it."""

import json
import signal

import pytest

from conftest import wait_for

pytestmark = pytest.mark.halyard_only


def test_json_log_lines_parse_and_carry_the_fields(servers):
    """Every line a node logs with log-format json is a JSON object with time, level, node,
    event, fields, pid and msg (a cluster event's line names its type, its fields are the
    event; other lines are event "log" with no fields); switched back to text at run time,
    the next lines are text."""
    s = servers.start(flags={"log-format": "json", "node-id": "j1"})
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "log-format") == [b"log-format", b"json"]
        # The node's first event (it leads its group) is logged before the switch.
        wait_for(lambda: any(b"LEADER_CHANGED" in e for e in c.cmd("HALYARD", "EVENTS")), 10,
                 "the leader event")
        assert c.cmd("CONFIG", "SET", "log-format", "text") == "OK"
    s.send_signal(signal.SIGTERM)
    assert s.wait_exit() == 0
    s._stopped = True
    with open(s.log_path, "rb") as f:
        lines = f.read().decode().splitlines()
    first_text = next(i for i, line in enumerate(lines) if not line.startswith("{"))
    assert first_text > 0, "nothing was logged as JSON"
    for line in lines[:first_text]:
        obj = json.loads(line)  # raises on a line that is not one JSON object
        assert set(obj) == {"time", "level", "node", "event", "fields", "pid", "msg"}, obj
        assert obj["node"] == "j1" and obj["pid"] == s.pid and obj["time"].endswith("Z")
        assert obj["level"] in ("debug", "info", "warn", "error")
        if obj["msg"].startswith("event {"):
            assert obj["fields"]["type"] == obj["event"] != "log", obj
        else:
            assert obj["event"] == "log" and obj["fields"] == {}, obj
    events = [json.loads(line) for line in lines[:first_text]]
    assert any(e["event"] == "LEADER_CHANGED" for e in events), events
    assert any("listening on" in json.loads(line)["msg"] for line in lines[:first_text])
    assert all(not line.startswith("{") for line in lines[first_text:]), lines[first_text:]
    assert any("shutting down" in line for line in lines[first_text:])

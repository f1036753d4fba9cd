"""log-format: json writes one JSON object per line (issue 14), and CONFIG SET switches it."""

import json
import signal

import pytest

pytestmark = pytest.mark.halyard_only


def test_json_log_lines_parse_and_carry_the_fields(servers):
    """Every line a node logs with log-format json is a JSON object with time, level, node,
    pid and msg; switched back to text at run time, the next lines are text."""
    s = servers.start(flags={"log-format": "json", "node-id": "j1"})
    with s.raw() as c:
        assert c.cmd("CONFIG", "GET", "log-format") == [b"log-format", b"json"]
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
        assert set(obj) == {"time", "level", "node", "pid", "msg"}, obj
        assert obj["node"] == "j1" and obj["pid"] == s.pid and obj["time"].endswith("Z")
        assert obj["level"] in ("debug", "info", "warn", "error")
    assert any("listening on" in json.loads(line)["msg"] for line in lines[:first_text])
    assert all(not line.startswith("{") for line in lines[first_text:]), lines[first_text:]
    assert any("shutting down" in line for line in lines[first_text:])

"""The log of `liveblog serve` as a machine reads it: one JSON object per line, a request
id on each request (the client's when sane, echoed back), and no secret in any line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.processes import Processes, Served


def test_json_lines_with_request_ids_and_no_secrets(tmp_path: Path,
                                                    processes: Processes) -> None:
    served = Served(processes, tmp_path / "var", LIVEBLOG_LOG_FORMAT="json")
    created = subprocess.run(
        [sys.executable, "-m", "liveblog", "token", "create", "--name", "rania", "--role",
         "reporter"], env=served.env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=served.url) as client:
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}",
                                             "X-Request-ID": "req-42.abc"})
        assert me.status_code == 200 and me.headers["x-request-id"] == "req-42.abc"
        # Not sane (a space; too long): a new id instead, echoed all the same.
        odd = client.get("/api/blogs?secret=hunter2", headers={
            "X-Request-ID": "has space", "Cookie": "liveblog_session=cookie-secret-1"})
        too_long = client.get("/nowhere", headers={"X-Request-ID": "x" * 129})
        assert odd.status_code == 200 and too_long.status_code == 404
        generated = [odd.headers["x-request-id"], too_long.headers["x-request-id"]]
        assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in generated)
        assert generated[0] != generated[1]
        # A failure's problem+json and its log line share the id.
        bad = client.post("/api/blogs", headers={"Authorization": f"Bearer {token}"},
                          json={"slug": "x", "title": "X"})
        assert bad.status_code == 403
    output = served.stop()

    lines = output.splitlines()
    first = next(n for n, line in enumerate(lines) if line.startswith("{"))
    # Before it, only serve's banner (printed, not logged); from it, only JSON objects.
    assert "liveblog " in lines[0] and all(not line.startswith("{") for line in lines[:first])
    logged = [json.loads(line) for line in lines[first:]]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in logged)
    assert any(line["logger"].startswith("uvicorn") and line["level"] == "INFO"
               for line in logged)
    access = {line["request_id"]: line for line in logged if line["logger"] == "liveblog.access"}
    assert access["req-42.abc"] | {"duration_ms": 0, "time": "", "client": ""} == {
        "time": "", "level": "INFO", "logger": "liveblog.access", "request_id": "req-42.abc",
        "message": access["req-42.abc"]["message"], "method": "GET", "route": "/api/me",
        "path": "/api/me", "status": 200, "duration_ms": 0, "client": ""}
    assert access["req-42.abc"]["client"].startswith("127.0.0.1:")
    assert access["req-42.abc"]["duration_ms"] > 0
    assert access[generated[0]]["path"] == "/api/blogs"  # not its query string
    assert access[generated[1]]["route"] == "unmatched"
    assert access[bad.headers["x-request-id"]]["status"] == 403
    for secret in (token, "hunter2", "cookie-secret-1"):
        assert secret not in output

"""The access log of a real server: its own switch whatever the log level, and every line written
before the process exits."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.live import start_server, stop_server

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}


def _access_lines(output: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "service.access"]


def test_every_access_line_is_written_before_exit_whatever_the_log_level(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"XENT_LOG_LEVEL": "warning"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for index in range(300):
                response = client.post(
                    "/v1/cross-entropy", json=SEED, headers={"x-request-id": f"exit-{index}"}
                )
                assert response.status_code == 200
    finally:
        assert stop_server(server) == 0, server.output()  # at once: SIGTERM right after the last answer
    ids = [line["request_id"] for line in _access_lines(server.output())]
    assert [f"exit-{index}" for index in range(300)] == [id_ for id_ in ids if str(id_).startswith("exit-")]
    assert "Application startup complete" not in server.output()  # the level still holds for the rest


def test_the_access_log_can_be_off_and_the_rest_of_the_log_stays(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"XENT_ACCESS_LOG": "off", "XENT_LOG_LEVEL": "info"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/v1/cross-entropy", json=SEED).status_code == 200
            assert client.post("/v1/cross-entropy", json={"target": [1]}).status_code == 422
    finally:
        assert stop_server(server) == 0, server.output()
    assert _access_lines(server.output()) == []
    assert "Application startup complete" in server.output()

"""schemathesis, every check, against the live server's own OpenAPI document."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import LiveServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 200
TIME_CAP_SECONDS = 600


@pytest.mark.slow
@pytest.mark.timeout(TIME_CAP_SECONDS + 60)  # the run's own cap comes first, with its output
def test_schemathesis_finds_nothing(live_server: LiveServer, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261125",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=TIME_CAP_SECONDS, check=False, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]

    cases: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in next(tmp_path.glob("*.ndjson")).read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            finished = event["ScenarioFinished"]
            recorder = finished.get("recorder") or {}
            phase = finished.get("phase")
            phase_name = str(phase.get("name") if isinstance(phase, dict) else phase)
            cases[(recorder.get("label", "?"), phase_name)] += len(recorder.get("cases", {}))
    posts = {label for label, _ in cases if label.startswith("POST ")}
    assert {
        "POST /v1/cross-entropy",
        "POST /v1/binary-cross-entropy",
        "POST /v1/softmax",
        "POST /v1/divergence",
    } <= posts
    for label in posts:
        # Operations with a body get the full budget; parameterless GETs have only one distinct case.
        assert cases[(label, "fuzzing")] >= EXAMPLES, (label, cases)

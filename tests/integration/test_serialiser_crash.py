"""One valid 8 KB request used to kill the process: orjson 3.12/3.13 overran its buffer (SIGABRT).

orjson 3.12.0 and 3.13.0 corrupt the heap when ``OPT_SERIALIZE_NUMPY`` writes a float64 array of
24-character numbers (negative, 17 significant digits, 3-digit exponent) past about 8 KiB of output.
pyproject.toml keeps orjson below 3.12. These tests hold the installed version to that:
- the library-level reproduction, verbatim, and the probe of every number length and output size
  (``tests/orjson_probe.py``), each in a subprocess, so that an abort fails a test and not the run;
- the three service-level triggers, against a real ``python -m service``, which must answer each one
  correctly and stay up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.live import LiveServer, start_server, stop_server

PROBE = Path(__file__).resolve().parents[1] / "orjson_probe.py"

#: The reproduction as the issue gave it: an abort ("malloc(): invalid size") within 100 rounds.
REPRODUCTION = """
import numpy as np, orjson
a = np.full(330, -1.2345678901234567e+300)
for _ in range(100):
    s = orjson.dumps({"a": a}, option=orjson.OPT_SERIALIZE_NUMPY)
    junk = [bytes(100 * k) for k in range(1, 3000)]
print("ok")
"""

CRASH_VALUE = -1.2345678901234567e300


def _python(*args: str, debug_malloc: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONMALLOC": "debug"} if debug_malloc else dict(os.environ)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=240, check=False
    )


@pytest.mark.slow
def test_the_reproduction_does_not_abort() -> None:
    run = _python("-c", REPRODUCTION, debug_malloc=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])


@pytest.mark.slow
def test_the_installed_orjson_writes_every_number_length_and_size_within_its_buffer() -> None:
    """Under PYTHONMALLOC=debug the first byte written past a buffer aborts the probe (exit -6)."""
    run = _python(str(PROBE), debug_malloc=True)
    died_on = run.stderr.strip().splitlines()[-1:] if run.returncode < 0 else []
    assert run.returncode == 0, (run.returncode, died_on, run.stdout[-2000:])
    summary = run.stdout.strip().splitlines()
    assert summary[-1].endswith(" 0 wrong"), summary
    # Every printed length a dtype can have was tried: 1-20 for int64, 3-15 for float32, 3-24 for float64.
    assert "int64: printed lengths 1-20" in run.stdout
    assert "float32: printed lengths 3-15" in run.stdout
    assert "float64: printed lengths 3-24, none of [1, 2, 25]" in run.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose allocator guards every block, so that an overrun aborts it at once, not some day."""
    server = start_server(tmp_path_factory.mktemp("serialiser"), env={"PYTHONMALLOC": "debug"})
    yield server
    assert stop_server(server) == 0, server.output()


def _post(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST and return the JSON answer; a dropped connection (a dead process) raises and fails the test."""
    response = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text[:500]
    assert server.process.poll() is None, server.output()[-3000:]
    answer: dict[str, Any] = response.json()
    return answer


def test_log_softmax_of_a_330_class_row_of_huge_negative_logits(server: LiveServer) -> None:
    row = [0.0] + [CRASH_VALUE] * 329
    answer = _post(server, "/v1/cross-entropy", {"logits": [row], "target": [0], "outputs": ["log_softmax"]})
    assert answer["loss"] == 0.0
    # log-sum-exp is exactly 0 here, so log_softmax is the logits themselves.
    assert answer["log_softmax"] == [row]


@pytest.mark.parametrize("classes", range(318, 334))
def test_every_row_width_around_the_crash(server: LiveServer, classes: int) -> None:
    row = [0.0] + [CRASH_VALUE] * (classes - 1)
    answer = _post(server, "/v1/cross-entropy", {"logits": [row], "target": [0], "outputs": ["log_softmax"]})
    assert answer["log_softmax"] == [row]


def test_binary_cross_entropy_gradient_of_333_confident_logits(server: LiveServer) -> None:
    logits = 300 + 0.37 * np.arange(333)
    answer = _post(
        server,
        "/v1/binary-cross-entropy",
        {"logits": logits.tolist(), "target": [1.0] * 333, "outputs": ["grad"]},
    )
    # d mean(softplus(-x)) / dx = -sigmoid(-x) / N, and sigmoid(-x) = exp(-x) / (1 + exp(-x)) ~ exp(-x).
    expected = -np.exp(-logits) / (1 + np.exp(-logits)) / 333
    assert expected.max() < -1e-200  # numbers of 24 characters: negative, 17 digits, 3-digit exponent
    np.testing.assert_allclose(answer["grad"], expected, rtol=1e-13)


@pytest.mark.parametrize("outputs", [["log_softmax"], ["softmax", "log_softmax"]])
def test_v2_json_softmax_model(server: LiveServer, outputs: list[str]) -> None:
    row = [0.0] + [CRASH_VALUE] * 329
    body = {
        "inputs": [{"name": "logits", "shape": [1, 330], "datatype": "FP64", "data": row}],
        "outputs": [{"name": name} for name in outputs],
    }
    answer = _post(server, "/v2/models/softmax/infer", body)
    data = {output["name"]: output["data"] for output in answer["outputs"]}
    assert list(data) == outputs
    assert data["log_softmax"] == row
    if "softmax" in data:
        assert data["softmax"] == [1.0] + [0.0] * 329

"""The repository's tools run: the benchmark suite (tiny sizes) and the reference-case generator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: How long a tool may run (seconds). The tests that run one get a minute more from pytest-timeout, so
#: that a tool that runs too long fails with its output, not with a stack dump of this process.
TOOL_SECONDS = 600


def _run(*command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a repository tool with this interpreter; fail with its output's tail if it fails."""
    run = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _torch_or_skip() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("PYTORCH NOT INSTALLED: scripts/test installs the bench extra (torch==2.13.0)")


@pytest.mark.slow
@pytest.mark.timeout(TOOL_SECONDS + 60)
def test_the_benchmark_suite_runs(tmp_path: Path) -> None:
    _torch_or_skip()
    report = tmp_path / "bench.json"
    run = _run("-m", "bench.run", "--quick", "--json", str(report), timeout=TOOL_SECONDS)
    data = json.loads(report.read_text())
    assert {row["dtype"] for row in data["core_vs_torch"]} == {"float32", "float64"}
    assert all(row["ratio"] > 0 for row in data["core_vs_torch"])
    assert data["small_requests"][0]["service_rps"] > 0
    assert data["small_requests"][0]["service_v2_json_rps"] > 0
    assert data["small_requests"][0]["v2_json_over_v1"] > 0
    assert data["large_requests"]["peak_rss_over_body"] > 0
    assert "1. core / PyTorch" in run.stdout


@pytest.mark.slow
@pytest.mark.timeout(TOOL_SECONDS + 60)
def test_the_extra_reference_cases_are_what_pytorch_computes() -> None:
    _torch_or_skip()
    _run("scripts/make_reference_cases.py", "--check", timeout=TOOL_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(TOOL_SECONDS + 60)
def test_the_metrics_benchmark_runs() -> None:
    _torch_or_skip()
    run = _run("bench/metrics.py", "--quick", timeout=TOOL_SECONDS)
    ratios = {line[:32].strip(): float(line.split()[-1].rstrip("x")) for line in run.stdout.splitlines()[1:]}
    assert set(ratios) == {
        "losses (baseline)",
        "losses + sample_weight",
        "losses + every metric",
        "scikit-learn + torchmetrics",
    }
    assert ratios["losses (baseline)"] == 1.0 and all(ratio > 0 for ratio in ratios.values())


@pytest.mark.parametrize("protocol", [[], ["--v2-binary"]], ids=["v1 JSON", "v2 binary"])
def test_the_memory_benchmark_runs(protocol: list[str]) -> None:
    run = _run("bench/memory.py", "--rows", "64", "--classes", "10", "--at-limit", *protocol, timeout=120)
    figures = {
        name.strip(): float(value) for name, value in (line.split(":") for line in run.stdout.splitlines())
    }
    assert figures["body_mb"] > 0 and figures["response_mb"] > 0
    assert figures["peak_rss_mb"] >= figures["rss_before_mb"] > 0
    # Issue 18's figures: over the body plus the outputs' own bytes, with and without the idle process.
    assert figures["outputs_mb"] > 0
    assert figures["peak_over_io"] > figures["growth_over_io"] >= 0


@pytest.mark.slow
@pytest.mark.timeout(TOOL_SECONDS + 60)
def test_the_peer_benchmark_runs_dry(tmp_path: Path) -> None:
    """``bench.peers --dry-run``: the service, FastAPI's constant endpoint and uvicorn alone only (no
    peer installed)."""
    report = tmp_path / "peers.json"
    run = _run("-m", "bench.peers", "--dry-run", "--json", str(report), timeout=TOOL_SECONDS)
    data = json.loads(report.read_text())
    assert data["dry_run"] and "DRY RUN: NO PEER WAS INSTALLED OR MEASURED" in run.stdout
    small = {row["route"]: row for row in data["small_requests"]}
    assert set(small) == {"service v1", "service v2 JSON", "fastapi-constant v1", "uvicorn-alone v1"}
    assert all(row["rps"] > 0 for row in small.values())
    assert small["service v1"]["agrees"] and small["service v2 JSON"]["agrees"]
    large = {row["route"]: row for row in data["large_requests"]}
    assert set(large) == {"service v1", "service v2 JSON", "service v2 binary"}
    assert all(row["agrees"] and row["error"] is None for row in large.values())
    assert data["peak_memory"][0]["peak_over_body"] > 0
    # The service refuses every bad input with a 4xx.
    for row in data["validation"]:
        for problem in ("negative target", "ragged array", "NaN"):
            assert row[problem][:1] == "4", (row["route"], problem, row[problem])


def test_the_small_path_benchmark_runs() -> None:
    run = _run("bench/small_path.py", "--quick", timeout=120)
    ratios = [
        float(line.split("general is")[1].rstrip("x"))
        for line in run.stdout.splitlines()
        if "general is" in line
    ]
    assert len(ratios) == 4 and all(ratio > 0 for ratio in ratios)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_request_cost_benchmark_runs() -> None:
    run = _run("-m", "bench.request_cost", "--quick", timeout=120)
    figures = {
        line.rsplit(None, 1)[0].strip(): float(line.rsplit(None, 1)[1])
        for line in run.stdout.splitlines()[1:]
    }
    assert figures["FastAPI constant route, whole app"] > 0
    assert figures["service, whole app, access log on"] > figures["keys checked, parsed, validated"] > 0

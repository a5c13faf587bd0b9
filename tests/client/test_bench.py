"""bench/client.py runs (tiny sizes) and prints both of its tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_client_benchmark_runs() -> None:
    run = subprocess.run(
        [sys.executable, "bench/client.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1. one cross_entropy call" in run.stdout and "2. evaluate over" in run.stdout
    baseline = re.search(r"one binary request \(baseline\)\s+([\d,]+)\s+1\.00", run.stdout)
    assert baseline is not None and int(baseline.group(1).replace(",", "")) > 0
    assert re.search(r"JSON, concurrency 4, 2000 rows\s+[\d,]+\s+\d+\.\d\d", run.stdout)

"""Scale-out: ``evaluate`` over a 2-million-row memory-mapped file, through the repository's nginx
configuration in front of two real replicas (as docker-compose.yml deploys them), equals NumPy's
mean, with both replicas serving a share and the client's memory bounded by its requests in flight."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.deployment.test_compose import StubDNS, local_copy, stop, wait_for
from tests.deployment.tools import ROOT, free_port, system_tool
from xent_client import Client

ROWS, CLASSES = 2_000_000, 10
CONCURRENCY = 4
REQUEST_BYTES = 4 * 1024 * 1024
INFER = "/v2/models/cross_entropy/infer"


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and nginx's workers run as nobody.
    directory = Path(tempfile.mkdtemp(prefix="xent-client-scale-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def numpy_mean(
    logits: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
    weight: np.ndarray[Any, Any],
    ignore: int,
    s: float,
) -> float:
    """PyTorch's weighted, label-smoothed mean cross-entropy, in float64 NumPy."""
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    logp = x - (top + np.log(np.exp(x - top).sum(axis=1, keepdims=True)))
    kept = target != ignore
    rows = np.flatnonzero(kept)
    classes = target[kept]
    denominator = weight[classes].sum()
    nll = -(weight[classes] * logp[rows, classes]).sum()
    smooth = -(logp[rows] * weight).sum()
    return float(((1 - s) * nll + s / CLASSES * smooth) / denominator)


def infer_requests(log: Path) -> int:
    count = 0
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("logger") == "service.access" and entry.get("path") == INFER:
            assert entry.get("status") == 200, entry
            count += 1
    return count


@pytest.mark.slow
def test_evaluate_two_million_rows_through_nginx_over_two_replicas(work_dir: Path) -> None:
    nginx = system_tool("nginx", "nginx", "the client is not run against replicas behind nginx")
    rng = np.random.default_rng(2026)
    logits_path, target_path = work_dir / "logits.npy", work_dir / "target.npy"
    logits_file = np.lib.format.open_memmap(logits_path, mode="w+", dtype=np.float32, shape=(ROWS, CLASSES))
    for start in range(0, ROWS, 500_000):
        logits_file[start : start + 500_000] = rng.normal(scale=4, size=(500_000, CLASSES))
    logits_file.flush()
    del logits_file
    target = rng.integers(0, CLASSES, ROWS)
    target[rng.random(ROWS) < 0.05] = -1
    np.save(target_path, target)
    weight = rng.uniform(0.5, 2.0, CLASSES)
    logits = np.load(logits_path, mmap_mode="r")
    labels = np.load(target_path, mmap_mode="r")
    expected = numpy_mean(np.asarray(logits), target, weight, -1, 0.1)

    replicas = ["127.0.0.1", "127.0.0.2"]
    port, proxy_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENT_")}
    env.update(PYTHONUNBUFFERED="1", XENT_COMPUTE_THREADS="1")
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []
    logs = [work_dir / f"replica-{address}.log" for address in replicas]
    dns = StubDNS("api", replicas)
    try:
        for address, log in zip(replicas, logs, strict=True):
            with log.open("wb") as sink:
                command = [sys.executable, "-m", "service", "--host", address, "--port", str(port)]
                replica = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
            processes.append((replica, signal.SIGTERM))
        for address, (process, _), log in zip(replicas, processes, logs, strict=True):
            wait_for(f"http://{address}:{port}/health/ready", process, log)
        copy = local_copy(
            work_dir,
            {
                "resolver 127.0.0.11 ": f"resolver 127.0.0.1:{dns.port} ",
                "http://api:8000;": f"http://api:{port};",
                "listen 8080;": f"listen 127.0.0.1:{proxy_port};",
            },
        )
        nginx_log = work_dir / "nginx.log"
        with nginx_log.open("wb") as sink:
            proxy = subprocess.Popen(
                [nginx, "-e", "stderr", "-p", str(work_dir), "-c", str(copy), "-g", "daemon off;"],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append((proxy, signal.SIGQUIT))
        url = f"http://127.0.0.1:{proxy_port}"
        wait_for(f"{url}/health/ready", proxy, nginx_log)

        with Client(url) as client:
            tracemalloc.start()
            try:
                result = client.evaluate(
                    logits,
                    labels,
                    weight=weight,
                    ignore_index=-1,
                    label_smoothing=0.1,
                    concurrency=CONCURRENCY,
                    request_bytes=REQUEST_BYTES,
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        for process, graceful in reversed(processes):
            stop(process, graceful)
        dns.close()

    assert result.loss is not None and result.rows == ROWS
    assert abs(result.loss - expected) <= 1e-12 * abs(expected), (result.loss, expected)
    assert result.count == int((target != -1).sum())
    served = [infer_requests(log) for log in logs]
    # Each request converts its float32 rows to float64 (one body); at most CONCURRENCY are in
    # flight while the next is built, whatever the file's size (here 80 MB of logits).
    body = result.largest_request
    assert 0.9 * REQUEST_BYTES <= body <= REQUEST_BYTES
    print(f"client peak: {peak / body:.2f} request bodies of {body} bytes; requests per replica: {served}")
    assert peak <= (CONCURRENCY + 1) * body, f"peak {peak / body:.2f} request bodies"
    assert sum(served) == result.requests and min(served) > 0, f"requests per replica: {served}"

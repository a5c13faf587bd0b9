"""What the Python client's `evaluate` costs, and where JSON stops being the cheaper transport.

    python bench/client.py [--rows 1000000] [--classes 10] [--json-rows 50000] [--repeats 3] [--quick]

Starts ``python -m service`` on a free loopback port (default settings) and measures, interleaved in
each repeat so that all contenders see the same machine state (medians over the repeats):

1. crossover: one ``client.cross_entropy`` call (default outputs) with JSON and with binary tensors,
   for 2 to 1024 rows (22 to 11264 numbers, target included); the ratio JSON / binary. ``JSON_MAX_NUMBERS`` in
   ``xent_client/_transport.py`` is the largest size at which JSON is not slower.
2. evaluate: rows per second of ``client.evaluate`` over a (rows, classes) float64 array with class
   weights, binary tensors at concurrency 1, 2 and 4 (requests of ``--request-bytes``, default the
   client's own), then requests of 0.25, 1, 4 and 16 MiB at concurrency 4, and JSON at concurrency 4
   on the first ``--json-rows`` rows; each against the baseline: the same rows as ONE binary request
   (reduction "sum", no arrays back).

Every evaluate result is checked against the single request's mean (1e-12 relative).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from xent_client import Client
from xent_client._evaluate import REQUEST_BYTES

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    env["XENT_LOG_LEVEL"] = "warning"
    process = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the server did not start")


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each contender, all run once per repeat, in turn."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def crossover(client: Client, row_counts: list[int], repeats: int) -> None:
    print("1. one cross_entropy call (N x 10 logits, losses and softmax back): JSON / binary")
    print(f"   {'N':>5} {'numbers':>8} {'json ms':>9} {'binary ms':>10} {'ratio':>6}")
    rng = np.random.default_rng(1)
    for rows in row_counts:
        logits, target = rng.normal(size=(rows, 10)), rng.integers(0, 10, rows)

        def call(transport: Any, logits: NDArray[Any] = logits, target: NDArray[Any] = target) -> object:
            return client.cross_entropy(logits=logits, target=target, transport=transport)

        medians = interleaved({"json": lambda: call("json"), "binary": lambda: call("binary")}, repeats * 30)
        ratio = medians["json"] / medians["binary"]
        json_ms, binary_ms = medians["json"] * 1e3, medians["binary"] * 1e3
        print(f"   {rows:>5} {rows * 11:>8} {json_ms:>9.3f} {binary_ms:>10.3f} {ratio:>6.2f}")


def throughput(
    client: Client, rows: int, classes: int, json_rows: int, request_bytes: int, repeats: int
) -> None:
    rng = np.random.default_rng(2)
    logits, target = rng.normal(scale=3, size=(rows, classes)), rng.integers(0, classes, rows)
    weight = rng.uniform(0.5, 2.0, classes)
    size_mib = (logits.nbytes + target.nbytes) / MIB
    print(f"\n2. evaluate over {rows} x {classes} float64 ({size_mib:.1f} MiB binary), class weights: rows/s")
    single = client.cross_entropy(logits=logits, target=target, weight=weight, outputs=[], transport="binary")
    json_single = client.cross_entropy(
        logits=logits[:json_rows], target=target[:json_rows], weight=weight, outputs=[], transport="binary"
    )

    def baseline() -> object:
        return client.cross_entropy(
            logits=logits, target=target, weight=weight, reduction="sum", outputs=[], transport="binary"
        )

    def evaluate(
        concurrency: int, size: int, transport: Any = "binary", count: int = rows
    ) -> Callable[[], object]:
        def run() -> object:
            result = client.evaluate(
                logits[:count],
                target[:count],
                weight=weight,
                concurrency=concurrency,
                request_bytes=size,
                transport=transport,
            )
            want = single.loss if count == rows else json_single.loss
            assert want is not None and result.loss is not None
            assert abs(result.loss - want) <= 1e-12 * abs(want), (result.loss, want)
            return result

        return run

    contenders: dict[str, tuple[Callable[[], object], int]] = {
        "one binary request (baseline)": (baseline, rows)
    }
    sweep = [(1, request_bytes), (2, request_bytes), (4, request_bytes)]
    sweep += [(4, size) for size in (MIB // 4, MIB, 4 * MIB, 16 * MIB)]
    for concurrency, size in sweep:
        name = f"binary, concurrency {concurrency}, {size / MIB:g} MiB requests"
        contenders.setdefault(name, (evaluate(concurrency, size), rows))
    name = f"JSON, concurrency 4, {json_rows} rows"
    contenders[name] = (evaluate(4, request_bytes, "json", json_rows), json_rows)
    medians = interleaved({name: function for name, (function, _) in contenders.items()}, repeats)
    base_rate = rows / medians["one binary request (baseline)"]
    print(f"   {'':44} {'rows/s':>12} {'/ base':>8}")
    for name, (_, count) in contenders.items():
        rate = count / medians[name]
        print(f"   {name:44} {rate:>12,.0f} {rate / base_rate:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--json-rows", type=int, default=50_000)
    parser.add_argument("--request-bytes", type=int, default=REQUEST_BYTES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (the test suite's run)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.json_rows, args.repeats, args.request_bytes = 20_000, 2_000, 1, MIB // 4
    row_counts = [2, 8, 16, 32, 48, 64, 128, 256, 1024] if not args.quick else [2, 128]
    port = free_port()
    server = start_server(port)
    try:
        with Client(f"http://127.0.0.1:{port}", retries=0) as client:
            crossover(client, row_counts, args.repeats)
            throughput(client, args.rows, args.classes, args.json_rows, args.request_bytes, args.repeats)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

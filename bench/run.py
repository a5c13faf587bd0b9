"""The benchmark suite: the service against its peers and the physical floor, measured side by side.

    pip install -e '.[test,bench]'   # torch==2.13.0 from this machine's disk; Debian's wrk for load
    python -m bench.run              # about five minutes; prints the table, writes bench/results/
    python -m bench.run --quick      # seconds: tiny sizes, to check that the suite runs
    python -m bench.run --small-only # about three minutes: section 2 alone

Every figure is a ratio of two things measured in the same run, interleaved, with medians over
repeats, because the machines here are shared and noisy:

1. core vs PyTorch: the core's ``cross_entropy`` with losses and softmax against
   ``F.cross_entropy(reduction="none")`` + ``torch.softmax`` on the same arrays (target <= 1.0).
2. small requests: the article's example through the real server against a constant JSON endpoint of
   a bare FastAPI app run the same way, with 1 and 2 workers: requests per second (target >= 1.0) and
   p50/p99 latency, from wrk on loopback; and the same example as /v2 JSON (Open Inference Protocol)
   against /v1 on the same server, rounds alternating (target >= 0.9).
3. large requests: a 4096 x 1000 float64 batch as JSON: the server's time (from its own latency
   histogram at /metrics: arrival to the answer's last byte) against ``orjson.loads`` of the same
   body (target <= 2.0); the process's peak RSS against the body's
   size (target <= 4); the round trip of the same batch as JSON against float32 binary tensors
   through /v2 (target >= 5).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEED_BODY = b'{"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}'
V2_PATH = "/v2/models/cross_entropy/infer"
#: The same example as /v2 JSON, asking for what /v1 answers (``bench.peers.v2_json_body`` writes it so).
SEED_V2_BODY = (
    b'{"inputs": [{"name": "logits", "datatype": "FP64", "shape": [2, 3], '
    b'"data": [-1.0, 0.5, 2.0, -1.0, 0.5, 3.0]}, '
    b'{"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]}], '
    b'"outputs": [{"name": "loss"}, {"name": "losses"}, {"name": "softmax"}]}'
)

Row = dict[str, Any]


def median_time(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved(
    first: Callable[[], object], second: Callable[[], object], rounds: int, repeats: int
) -> tuple[float, float]:
    """Medians of ``rounds`` alternating medians of ``repeats`` calls each: noise hits both alike."""
    a, b = [], []
    for _ in range(rounds):
        a.append(median_time(first, repeats))
        b.append(median_time(second, repeats))
    return statistics.median(a), statistics.median(b)


# --- 1. core vs PyTorch -----------------------------------------------------------------------------


def core_vs_torch(quick: bool) -> list[Row]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from service.core import cross_entropy, set_threads

    torch.set_grad_enabled(False)
    # Both as a server runs them: every CPU this process may use (PyTorch's default, and the
    # service's XENT_COMPUTE_THREADS default).
    set_threads(torch.get_num_threads())
    shapes = [(2, 3), (256, 10)] if quick else [(2, 3), (256, 10), (4096, 1000), (65536, 100), (1000000, 10)]
    rows = []
    for dtype in ("float32", "float64"):
        for shape in shapes:
            rng = np.random.default_rng(0)
            x = rng.normal(size=shape).astype(dtype)
            t = rng.integers(0, shape[1], shape[0])
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)

            def ours(x: Any = x, t: Any = t, dtype: Any = dtype) -> object:
                return cross_entropy(x, t, reduction="none", dtype=dtype, outputs=["losses", "softmax"])

            def theirs(xt: Any = xt, tt: Any = tt) -> object:
                return F.cross_entropy(xt, tt, reduction="none"), torch.softmax(xt, 1)

            ours()
            theirs()  # warm-up: first calls allocate and load kernels
            size = x.size
            repeats = 1 if quick else (200 if size < 10_000 else 5)
            rounds = 2 if quick else (7 if size < 10_000 else 5)
            ours_s, torch_s = interleaved(ours, theirs, rounds, repeats)
            rows.append(
                {
                    "dtype": dtype,
                    "shape": list(shape),
                    "core_ms": ours_s * 1e3,
                    "torch_ms": torch_s * 1e3,
                    "ratio": ours_s / torch_s,
                }
            )
    return rows


# --- servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(
    command: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The server ``command`` on ``port``, ready; its output goes to ``log`` (default: nowhere)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    environment.update(env or {})
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=out)
    try:
        for _ in range(300):
            try:
                httpx.post(f"http://127.0.0.1:{port}/v1/cross-entropy", content=SEED_BODY, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def service_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "service", "--port", str(port), "--workers", str(workers)]


def baseline_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port),
        "--workers", str(workers), "--log-level", "warning", "--no-server-header",
    ]  # fmt: skip


# --- 2. small requests --------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, seconds: float, connections: int, body: bytes = SEED_BODY) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % body.decode())
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", duration, "--latency", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed responses from {url}")
    return {"rps": rps, "p50_ms": _wrk_percentile(output, "50%"), "p99_ms": _wrk_percentile(output, "99%")}


def _wrk_percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def python_load(url: str, seconds: float, connections: int, body: bytes = SEED_BODY) -> dict[str, float]:
    """A fallback load generator (slower than wrk: it measures less precisely, but it runs anywhere)."""
    import asyncio

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits) as client:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await client.post(
                        url, content=body, headers={"content-type": "application/json"}
                    )
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies

    latencies = asyncio.run(run())
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
    }


def small_requests(quick: bool) -> list[Row]:
    load = python_load if quick or not _has("wrk") else wrk
    seconds, connections, rounds = (1.0, 8, 1) if quick else (8.0, 64, 3)
    rows = []
    for workers in (1,) if quick else (1, 2):
        ours_port, base_port = free_port(), free_port()
        env = {"XENT_LOG_LEVEL": "warning", "XENT_ACCESS_LOG": "off"}  # as quiet as the baseline
        routes = {
            "base": (f"http://127.0.0.1:{base_port}/v1/cross-entropy", SEED_BODY),
            "ours": (f"http://127.0.0.1:{ours_port}/v1/cross-entropy", SEED_BODY),
            "ours_v2": (f"http://127.0.0.1:{ours_port}{V2_PATH}", SEED_V2_BODY),
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in routes}
        with (
            server(service_command(ours_port, workers), ours_port, env),
            server(baseline_command(base_port, workers), base_port),
        ):
            for url, body in routes.values():  # warm-up
                load(url, min(seconds, 2.0), connections, body)
            for _ in range(rounds):
                for name, (url, body) in routes.items():
                    runs[name].append(load(url, seconds, connections, body))

        def med(name: str, key: str, runs: dict[str, list[dict[str, float]]] = runs) -> float:
            return statistics.median(run[key] for run in runs[name])

        rows.append(
            {
                "workers": workers,
                "load": load.__name__,
                "service_rps": med("ours", "rps"),
                "fastapi_constant_rps": med("base", "rps"),
                "ratio": med("ours", "rps") / med("base", "rps"),
                "service_p50_ms": med("ours", "p50_ms"),
                "service_p99_ms": med("ours", "p99_ms"),
                "fastapi_constant_p50_ms": med("base", "p50_ms"),
                "fastapi_constant_p99_ms": med("base", "p99_ms"),
                "service_v2_json_rps": med("ours_v2", "rps"),
                "v2_json_over_v1": med("ours_v2", "rps") / med("ours", "rps"),
                "service_v2_json_p50_ms": med("ours_v2", "p50_ms"),
                "service_v2_json_p99_ms": med("ours_v2", "p99_ms"),
            }
        )
    return rows


def _has(program: str) -> bool:
    return subprocess.run(["which", program], capture_output=True, check=False).returncode == 0


# --- 3. large requests --------------------------------------------------------------------------------


def large_requests(quick: bool) -> Row:
    from bench.memory import measure

    rows, classes = (64, 100) if quick else (4096, 1000)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(rows, classes))
    target = rng.integers(0, classes, rows)
    body = orjson.dumps(
        {"logits": logits, "target": target, "outputs": ["losses", "softmax"]},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    port = free_port()
    repeats = 1 if quick else 3
    rounds = 2 if quick else 5
    result: Row = {"shape": [rows, classes], "body_mb": len(body) / 2**20}
    with server(service_command(port, 1), port, {"XENT_LOG_LEVEL": "warning", "XENT_ACCESS_LOG": "off"}):
        url = f"http://127.0.0.1:{port}"
        server_times: list[float] = []
        round_trips: list[float] = []
        with httpx.Client(base_url=url, timeout=300) as client:

            def request() -> None:
                # The service's own latency histogram: from the request's arrival to its answer's
                # last byte (a large answer is streamed: its Server-Timing header goes out first).
                served_before = _served_seconds(client)
                started = time.perf_counter()
                status, _, _ = post_raw(port, "/v1/cross-entropy", body, {"content-type": "application/json"})
                round_trips.append(time.perf_counter() - started)
                assert status == 200, status
                served = _served_seconds(client) - served_before
                assert served > 0, "the service's latency histogram did not count the request"
                server_times.append(served)

            request()  # warm-up
            server_times.clear()
            round_trips.clear()
            parse_s, _ = interleaved(lambda: orjson.loads(body), request, rounds, repeats)
            result["json_server_s"] = statistics.median(server_times)
            result["orjson_parse_s"] = parse_s
            result["server_over_parse"] = result["json_server_s"] / parse_s
            result["json_round_trip_s"] = statistics.median(round_trips)
            binary = binary_round_trip(client, logits, target, rounds)
            if binary is not None:
                result["binary_round_trip_s"] = binary
                result["json_over_binary"] = result["json_round_trip_s"] / binary
    memory = measure(rows, classes, ["losses", "softmax"], at_limit=False)
    result["peak_rss_mb"] = memory["peak_rss_mb"]
    result["peak_rss_over_body"] = memory["peak_over_body"]
    result["rss_growth_over_body"] = memory["growth_over_body"]
    return result


def _served_seconds(client: httpx.Client) -> float:
    """The service's total time answering POST /v1/cross-entropy with 200, from its /metrics."""
    text = client.get("/metrics").text
    pattern = (
        r'xent_request_duration_seconds_sum\{[^}]*route="/v1/cross-entropy"[^}]*status="200"[^}]*\} (\S+)'
    )
    return sum(float(value) for value in re.findall(pattern, text))


def post_raw(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST with the standard library's http.client, which hands the body to the socket in one call.

    httpx uploads an 80 MB body at about half that speed here, and the upload is part of the server's
    time (the request has arrived when its last byte has): the client must not be the bottleneck.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def binary_round_trip(
    client: httpx.Client, logits: np.ndarray[Any, Any], target: np.ndarray[Any, Any], rounds: int
) -> float | None:
    """The same batch as float32/int64 binary tensors through /v2 (None if the server has no /v2)."""
    if client.get("/v2/models/cross_entropy").status_code != 200:
        return None
    x = np.ascontiguousarray(logits, dtype="<f4")
    t = np.ascontiguousarray(target, dtype="<i8")
    header = {
        "inputs": [
            {
                "name": "logits",
                "datatype": "FP32",
                "shape": list(x.shape),
                "parameters": {"binary_data_size": x.nbytes},
            },
            {
                "name": "target",
                "datatype": "INT64",
                "shape": list(t.shape),
                "parameters": {"binary_data_size": t.nbytes},
            },
        ],
        "outputs": [
            {"name": "losses", "parameters": {"binary_data": True}},
            {"name": "softmax", "parameters": {"binary_data": True}},
        ],
    }
    head = orjson.dumps(header)
    body = head + x.tobytes() + t.tobytes()
    headers = {"Inference-Header-Content-Length": str(len(head)), "content-type": "application/octet-stream"}
    port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        status, _, _ = post_raw(port, "/v2/models/cross_entropy/infer", body, headers)
        times.append(time.perf_counter() - started)
        assert status == 200, status
    return statistics.median(times)


# --- the table ----------------------------------------------------------------------------------------


def print_table(report: Row) -> None:
    """The sections measured (``--small-only``: section 2 alone)."""
    print(f"\nmachine: {report['machine']}")
    if "core_vs_torch" in report:
        _print_core(report)
    _print_small(report["small_requests"])
    if "large_requests" in report:
        _print_large(report["large_requests"])


def _print_core(report: Row) -> None:
    print(
        f"\n1. core / PyTorch (losses + softmax, reduction none), {report['threads']} thread(s)"
        "   target <= 1.0"
    )
    print(f"   {'dtype':8} {'shape':>14} {'core ms':>10} {'torch ms':>10} {'ratio':>7}")
    for row in report["core_vs_torch"]:
        shape = "x".join(map(str, row["shape"]))
        timings = f"{row['core_ms']:10.3f} {row['torch_ms']:10.3f} {row['ratio']:7.2f}"
        print(f"   {row['dtype']:8} {shape:>14} {timings}")


def _print_small(rows: list[Row]) -> None:
    print("\n2. small requests: service / FastAPI constant endpoint     target >= 1.0")
    for row in rows:
        print(
            f"   {row['workers']} worker(s), {row['load']}: "
            f"{row['service_rps']:.0f} / {row['fastapi_constant_rps']:.0f} req/s = {row['ratio']:.2f}; "
            f"p50 {row['service_p50_ms']:.2f} / {row['fastapi_constant_p50_ms']:.2f} ms, "
            f"p99 {row['service_p99_ms']:.2f} / {row['fastapi_constant_p99_ms']:.2f} ms"
        )
    print("   the same example as /v2 JSON / as /v1, same server     target >= 0.9")
    for row in rows:
        print(
            f"   {row['workers']} worker(s), {row['load']}: "
            f"{row['service_v2_json_rps']:.0f} / {row['service_rps']:.0f} req/s"
            f" = {row['v2_json_over_v1']:.2f}; "
            f"p50 {row['service_v2_json_p50_ms']:.2f} / {row['service_p50_ms']:.2f} ms, "
            f"p99 {row['service_v2_json_p99_ms']:.2f} / {row['service_p99_ms']:.2f} ms"
        )


def _print_large(large: Row) -> None:
    shape = "x".join(map(str, large["shape"]))
    print(f"\n3. large request {shape} float64, {large['body_mb']:.1f} MiB of JSON")
    print(
        f"   server time / orjson.loads: {large['json_server_s']:.3f} s / {large['orjson_parse_s']:.3f} s"
        f" = {large['server_over_parse']:.2f}   target <= 2.0"
    )
    print(
        f"   peak RSS / body: {large['peak_rss_mb']:.0f} MiB / {large['body_mb']:.1f} MiB"
        f" = {large['peak_rss_over_body']:.2f}   target <= 4"
        f" (growth over the idle process: {large['rss_growth_over_body']:.2f})"
    )
    if "binary_round_trip_s" in large:
        print(
            f"   round trip JSON / binary float32 (/v2): {large['json_round_trip_s']:.3f} s"
            f" / {large['binary_round_trip_s']:.3f} s = {large['json_over_binary']:.1f}   target >= 5"
        )
    else:
        print("   round trip JSON / binary: n/a (no /v2 on this server)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the suite runs")
    parser.add_argument("--small-only", action="store_true", help="section 2 (small requests) alone")
    parser.add_argument("--json", type=Path, help="where to write the report (default: bench/results/)")
    args = parser.parse_args(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    report: Row = {"machine": f"{machine}, Python {platform.python_version()}", "quick": args.quick}
    if not args.small_only:
        report["core_vs_torch"] = core_vs_torch(args.quick)
        from service.core import get_threads

        report["threads"] = get_threads()
    report["small_requests"] = small_requests(args.quick)
    if not args.small_only:
        report["large_requests"] = large_requests(args.quick)
    print_table(report)
    path = args.json or RESULTS / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

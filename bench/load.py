"""Load and soak: many concurrent connections, a mix of valid and invalid, small and large requests.

    python bench/load.py --url http://127.0.0.1:8000 --duration 60 --connections 64 [--pid PID]
                         [--attackers 3]

Every response is checked: its status must be the one that request should get (200, 422, 415, 404),
and a sample of the valid answers is recomputed with the service's own core in this process and
compared number by number. With ``--attackers N``, N more connections attack the server in turn while
the load runs, as in issue 12: a client that asks for a 6 MB answer and reads none of it, an upload
that trickles in a byte at a time, a request head that does the same; each must be cut off by the
server (``attacks_cut``), and none counts as an error of the load. With ``--pid`` (the server's
process id, on this machine) the server's resident memory is read after a warm-up and at the end.
Prints a summary and, with ``--json``, writes it to a file. Exit status 1 when anything was wrong (an
error, a 5xx, a wrong answer, an attack the server did not cut off).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from service.core import binary_cross_entropy, cross_entropy, divergence, tempered_softmax

Json = dict[str, Any]
Check = Callable[[Json], bool]


@dataclass
class Request:
    kind: str
    method: str
    path: str
    content: bytes | None
    headers: dict[str, str]
    expected_status: int
    check: Check | None = None


@dataclass
class Summary:
    duration_s: float = 0.0
    connections: int = 0
    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    server_errors: int = 0
    checked: int = 0
    wrong_answers: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    requests_per_second: float = 0.0
    rss_after_warmup_mb: float | None = None  # idle, once the warm-up's requests have all finished
    rss_peak_mb: float | None = None  # the largest reading under load
    rss_end_mb: float | None = None  # idle, once the run's requests have all finished
    rss_growth_percent: float | None = None
    attacks: int = 0  # attacks finished (--attackers)
    attacks_cut: int = 0  # of which the server cut off: an answer left unfinished, or a 408
    first_problems: list[str] = field(default_factory=list)


def _close(got: Any, want: Any, dtype: str = "float64") -> bool:
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (1e-5, 1e-6)
    if want is None or got is None:
        return got is want
    got_array = np.asarray(got, dtype=np.float64)
    want_array = np.asarray(want, dtype=np.float64)
    return got_array.shape == want_array.shape and bool(
        np.allclose(got_array, want_array, rtol=rtol, atol=atol)
    )


def _json(path: str, body: Json, expected: int = 200, check: Check | None = None, kind: str = "") -> Request:
    return Request(
        kind or path,
        "POST",
        path,
        orjson.dumps(body),
        {"content-type": "application/json"},
        expected,
        check,
    )


def _cross_entropy_request(rng: np.random.Generator, rows: int, classes: int, kind: str) -> Request:
    logits = rng.normal(0, 3, (rows, classes)).round(6)
    target = rng.integers(0, classes, rows)
    options: Json = {
        "reduction": str(rng.choice(["mean", "sum", "none"])),
        "label_smoothing": float(rng.choice([0.0, 0.1])),
        "outputs": ["losses", "softmax", "grad"],
    }
    body = {"logits": logits.tolist(), "target": target.tolist(), **options}

    def check(answer: Json) -> bool:
        want = cross_entropy(
            logits,
            target,
            reduction=options["reduction"],
            label_smoothing=options["label_smoothing"],
            outputs=["losses", "softmax", "grad"],
        )
        return (
            _close(answer["loss"], None if want.loss is None else float(want.loss))
            and _close(answer["losses"], want.losses)
            and _close(answer["softmax"], want.softmax)
            and _close(answer["grad"], want.grad)
        )

    return _json("/v1/cross-entropy", body, check=check, kind=kind)


def _other_request(rng: np.random.Generator) -> Request:
    choice = int(rng.integers(0, 3))
    if choice == 0:
        logits = rng.normal(0, 2, (8, 5)).round(6)
        target = rng.integers(0, 2, (8, 5)).astype(float)

        def check_bce(answer: Json) -> bool:
            want = binary_cross_entropy(logits, target)
            return _close(answer["loss"], float(want.loss or 0.0)) and _close(answer["losses"], want.losses)

        body = {"logits": logits.tolist(), "target": target.tolist()}
        return _json("/v1/binary-cross-entropy", body, check=check_bce, kind="bce")
    if choice == 1:
        logits = rng.normal(0, 2, (4, 6)).round(6)
        temperature = float(rng.choice([0.5, 1.0, 3.0]))

        def check_softmax(answer: Json) -> bool:
            want, _ = tempered_softmax(logits, temperature=temperature)
            return _close(answer["softmax"], want)

        body = {"logits": logits.tolist(), "temperature": temperature}
        return _json("/v1/softmax", body, check=check_softmax, kind="softmax")
    raw = rng.random((3, 4)) + 0.05
    p = (raw / raw.sum(axis=1, keepdims=True)).round(6)
    raw = rng.random((3, 4)) + 0.05
    q = (raw / raw.sum(axis=1, keepdims=True)).round(6)

    def check_divergence(answer: Json) -> bool:
        want = divergence(p, q)
        return _close(answer["cross_entropy"], float(want.cross_entropy or 0.0))

    return _json(
        "/v1/divergence", {"p": p.tolist(), "q": q.tolist()}, check=check_divergence, kind="divergence"
    )


SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}

INVALID: list[Request] = [
    Request(
        "invalid-nan",
        "POST",
        "/v1/cross-entropy",
        b'{"logits": [[1, NaN]], "target": [0]}',
        {"content-type": "application/json"},
        422,
    ),
    _json("/v1/cross-entropy", {"logits": [[1, 2]], "target": [7]}, 422, kind="invalid-range"),
    _json("/v1/cross-entropy", {"logits": [[1, 2], [3]], "target": [0, 0]}, 422, kind="invalid-ragged"),
    _json("/v1/softmax", {"logits": [1, 2], "temperature": 0}, 422, kind="invalid-temperature"),
    Request(
        "invalid-json", "POST", "/v1/divergence", b"{not json", {"content-type": "application/json"}, 422
    ),
    Request("invalid-type", "POST", "/v1/cross-entropy", b"logits=1", {"content-type": "text/plain"}, 415),
    Request("invalid-route", "GET", "/v1/nowhere", None, {}, 404),
]


def make_request(rng: np.random.Generator) -> Request:
    """Weighted mix: mostly small valid requests, some invalid, a few medium and large batches."""
    roll = rng.random()
    if roll < 0.35:
        seed = cross_entropy(np.array(SEED["logits"], dtype=float), np.array(SEED["target"]))

        def check_seed(answer: Json) -> bool:
            return _close(answer["loss"], float(seed.loss or 0.0)) and _close(answer["softmax"], seed.softmax)

        return _json("/v1/cross-entropy", SEED, check=check_seed, kind="seed")
    if roll < 0.55:
        return _cross_entropy_request(rng, int(rng.integers(1, 16)), int(rng.integers(2, 12)), "small")
    if roll < 0.70:
        return _other_request(rng)
    if roll < 0.90:
        return INVALID[int(rng.integers(0, len(INVALID)))]
    if roll < 0.985:
        return _cross_entropy_request(rng, 256, 100, "medium")
    return _cross_entropy_request(rng, 2000, 200, "large")


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


ATTACKS = ("slow_reader", "trickle_upload", "trickle_head")


async def attack(url: str, kind: str, body: bytes, limit: float) -> bool:
    """One attack of ``kind`` on the server at ``url``; True when the server cut it off in ``limit`` s."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: writes stall at once
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    answer = bytearray()
    try:
        if kind == "slow_reader":
            writer.write(
                f"POST /v1/cross-entropy HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await asyncio.sleep(limit / 2)  # takes nothing: the server must give up on it
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(limit / 2):
                    while chunk := await reader.read(1 << 20):
                        answer += chunk
            head, _, rest = bytes(answer).partition(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head.lower())
            return bool(length) and len(rest) < int(length.group(1))  # type: ignore[union-attr]
        if kind == "trickle_upload":
            writer.write(b"POST /v1/cross-entropy HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        else:
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
        deadline = loop.time() + limit
        with contextlib.suppress(ConnectionError):
            while loop.time() < deadline:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 0.3)
                except TimeoutError:
                    writer.write(b"1")  # a byte every 0.3 s: never silent
                    continue
                if not chunk:
                    break
                answer += chunk
        return bytes(answer).startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()


async def run(
    url: str,
    duration: float,
    connections: int,
    seed: int,
    pid: int | None,
    warmup: float,
    check_every: int,
    attackers: int = 0,
) -> Summary:
    summary = Summary(connections=connections)
    latencies: list[float] = []
    readings: list[tuple[float, float]] = []
    rng = np.random.default_rng(seed)
    # Requests are prepared ahead, so that building them does not slow the load down.
    pool = [make_request(rng) for _ in range(600)]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.perf_counter()
    picker = random.Random(seed)

    def problem(text: str) -> None:
        if len(summary.first_problems) < 20:
            summary.first_problems.append(text)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def exchange(request: Request, check: bool) -> None:
            """Send one request and check its status (and, with ``check``, its answer)."""
            sent = time.perf_counter()
            try:
                response = await client.request(
                    request.method, request.path, content=request.content, headers=request.headers
                )
            except httpx.HTTPError as error:
                summary.errors += 1
                problem(f"{request.kind}: {type(error).__name__}: {error}")
                return
            latencies.append(time.perf_counter() - sent)
            summary.requests += 1
            summary.by_kind[request.kind] = summary.by_kind.get(request.kind, 0) + 1
            if response.status_code >= 500:
                summary.server_errors += 1
            if response.status_code != request.expected_status:
                summary.errors += 1
                problem(f"{request.kind}: status {response.status_code}, expected {request.expected_status}")
                return
            if check and request.check is not None:
                summary.checked += 1
                if not request.check(response.json()):
                    summary.wrong_answers += 1
                    problem(f"{request.kind}: wrong answer")

        async def worker(deadline: float) -> None:
            count = 0
            while time.perf_counter() < deadline:
                count += 1
                await exchange(pool[picker.randrange(len(pool))], count % check_every == 0)

        async def sample_memory(deadline: float) -> None:
            while pid is not None and time.perf_counter() < deadline:
                readings.append((time.perf_counter(), server_rss_mb(pid)))
                await asyncio.sleep(0.25)

        async def idle_memory() -> float | None:
            # Readings under load jump with every large batch in flight; a leak shows as a larger
            # process once nothing is in flight. Wait for the server to finish and to give back
            # what it keeps no longer (a second after its last large request: service/memory.py).
            await asyncio.sleep(2.5)
            return None if pid is None else server_rss_mb(pid)

        async def attacker(index: int, deadline: float) -> None:
            # 6 MB of answer (300 x 1000 softmax numbers): more than the socket buffers on both sides.
            body = orjson.dumps(
                {"logits": rng.normal(size=(300, 1000)), "target": [0] * 300, "outputs": ["softmax"]},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
            turn = index
            while time.perf_counter() < deadline - 8:  # room for one attack to end
                kind = ATTACKS[turn % len(ATTACKS)]
                turn += 1
                cut = await attack(url, kind, body, limit=8)
                summary.attacks += 1
                summary.attacks_cut += cut
                if not cut:
                    problem(f"attack {kind}: not cut off")

        # Warm-up: first one request of every kind, the largest included, so that whatever the
        # machine's speed every code path and buffer size has been used before the baseline is
        # read; then load for ``warmup`` seconds. A pause, the measured run, a pause.
        every_kind = {request.kind: request for request in pool}
        every_kind.setdefault("large", _cross_entropy_request(rng, 2000, 200, "large"))
        for request in every_kind.values():
            await exchange(request, check=True)
        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(worker(warm_until) for _ in range(connections)))
        summary.rss_after_warmup_mb = await idle_memory()
        deadline = started + max(duration, warmup + 1.0)
        await asyncio.gather(
            sample_memory(deadline),
            *(worker(deadline) for _ in range(connections)),
            *(attacker(index, deadline) for index in range(attackers)),
        )
        summary.rss_end_mb = await idle_memory()
    summary.duration_s = time.perf_counter() - started
    if readings:
        summary.rss_peak_mb = max(mb for _, mb in readings)
    if summary.rss_after_warmup_mb and summary.rss_end_mb:
        summary.rss_growth_percent = 100 * (summary.rss_end_mb / summary.rss_after_warmup_mb - 1)
    if latencies:
        summary.latency_p50_ms = 1000 * float(np.percentile(latencies, 50))
        summary.latency_p99_ms = 1000 * float(np.percentile(latencies, 99))
    summary.requests_per_second = summary.requests / summary.duration_s
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds before RSS is read")
    parser.add_argument("--pid", type=int, help="the server's process id, to read its memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-every", type=int, default=5, help="recompute every Nth valid answer")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument(
        "--attackers", type=int, default=0, help="connections attacking meanwhile (XENT_*_TIMEOUT <= 2)"
    )
    args = parser.parse_args(argv)
    summary = asyncio.run(
        run(
            args.url,
            args.duration,
            args.connections,
            args.seed,
            args.pid,
            args.warmup,
            args.check_every,
            args.attackers,
        )
    )
    report = asdict(summary)
    for key, value in report.items():
        if key != "first_problems":
            shown = f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else value
            print(f"{key:>22}: {shown}")
    for line in summary.first_problems:
        print(f"  problem: {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = summary.errors or summary.server_errors or summary.wrong_answers
    failed = failed or summary.attacks_cut < summary.attacks
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

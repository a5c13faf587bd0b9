"""What the transport limits cost: small-request throughput with them on and off, side by side.

    python -m bench.limits [--rounds 5] [--seconds 4] [--connections 32]

Starts two servers on loopback: ``python -m service`` as deployed (the request head's size and deadline,
the connection cap, every answer's minimum send rate, the uploads' minimum receive rate; the memory
budget takes no part in small requests), and the same service with ``transport_limits=False``
(uvicorn's own httptools protocol, no minimum rates). Then drives each in turn, alternating, with the
article's example over keep-alive connections from a lean asyncio client (raw HTTP/1.1, so that the
client costs less than the server), and prints the medians and the median of the rounds' ratios
(target: at least 0.97).

Two ratios: requests per second, and requests per second of the server's own CPU time (user + system,
from /proc). On a machine shared with other work the first swings by tens of percent from one round
to the next whatever is measured; the second is what throughput is when the server has the CPU to
itself, and moves by a percent or two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from bench.run import SEED_BODY, free_port, server

REQUEST = (
    b"POST /v1/cross-entropy HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(SEED_BODY)}\r\n\r\n".encode()
    + SEED_BODY
)


async def _connection(port: int, deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(head.decode(errors="replace"))
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, seconds: float, connections: int, pid: int | None = None) -> dict[str, float]:
    """Requests per second, per second of the server's CPU (with its ``pid``), and p99 latency (ms)
    of ``connections`` clients for ``seconds``."""

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, deadline, latencies) for _ in range(connections)))
        return latencies

    cpu_before = cpu_seconds(pid) if pid else 0.0
    latencies = asyncio.run(run())
    cpu = cpu_seconds(pid) - cpu_before if pid else float("nan")
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "per_cpu_second": len(latencies) / cpu,
        "p99_ms": 1e3 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)

    on_port, off_port = free_port(), free_port()
    env = {"XENT_LOG_LEVEL": "warning"}
    on_command = [sys.executable, "-m", "service", "--port", str(on_port)]
    unlimited = "import sys; from service.__main__ import main; main(sys.argv[1:], transport_limits=False)"
    off_command = [sys.executable, "-c", unlimited, "--port", str(off_port)]
    on: list[dict[str, float]] = []
    off: list[dict[str, float]] = []
    with server(on_command, on_port, env) as on_server, server(off_command, off_port, env) as off_server:
        load(on_port, 1.0, args.connections)  # warm-up
        load(off_port, 1.0, args.connections)
        for round_ in range(args.rounds):
            # Alternate which goes first, so that a drift in the machine's load falls on both.
            sides = [(on_port, on_server.pid, on), (off_port, off_server.pid, off)]
            for port, pid, runs in sides if round_ % 2 == 0 else sides[::-1]:
                runs.append(load(port, args.seconds, args.connections, pid))

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    def paired(on: list[dict[str, float]], off: list[dict[str, float]], key: str) -> float:
        """The median of each round's ratio: the two sides of a round ran back to back."""
        return statistics.median(a[key] / b[key] for a, b in zip(on, off, strict=True))

    rows = {
        "limits_on_rps": median(on, "rps"),
        "limits_off_rps": median(off, "rps"),
        "ratio_on_over_off": paired(on, off, "rps"),
        "on_per_cpu_second": median(on, "per_cpu_second"),
        "off_per_cpu_second": median(off, "per_cpu_second"),
        "cpu_ratio_on_over_off": paired(on, off, "per_cpu_second"),
        "limits_on_p99_ms": median(on, "p99_ms"),
        "limits_off_p99_ms": median(off, "p99_ms"),
    }
    print(f"small requests, {args.connections} connections, {args.rounds} rounds of {args.seconds:g} s each:")
    for key, value in rows.items():
        print(f"{key:>26}: {value:.3f}" if "ratio" in key else f"{key:>26}: {value:.1f}")
    for key in ("rps", "per_cpu_second"):
        rounds = " ".join(f"{a[key] / b[key]:.3f}" for a, b in zip(on, off, strict=True))
        print(f"{'each round, ' + key:>26}: {rounds}")


if __name__ == "__main__":
    main()

"""What the transport limits cost: small-request throughput with them on and off, side by side.

    python -m bench.limits [--rounds 20] [--seconds 1.5] [--connections 32] [--blocks 100]

Starts two servers on loopback: ``python -m service`` as deployed (the request head's size and deadline,
the connection cap, every answer's minimum send rate, the uploads' minimum receive rate; the memory
budget takes no part in small requests), and the same service with ``transport_limits=False``
(uvicorn's own httptools protocol, no minimum rates). Then drives each in turn, alternating, with the
article's example over keep-alive connections from a lean asyncio client (raw HTTP/1.1, so that the
client costs less than the server), and prints the medians and the median of the rounds' ratios
(target: at least 0.97).

Two ratios: requests per second, and requests per second of the server's own CPU time (user + system,
from /proc). On a machine shared with other work the first swings by tens of percent from one round
to the next whatever is measured, and the second by several percent.

So it also measures in process, where the difference is not lost in the noise: the same app served
by each protocol (``GuardedHttpToolsProtocol`` and the body's minimum rate, against uvicorn's
``HttpToolsProtocol`` without), each fed the article's example as bytes from a transport that keeps
nothing, in interleaved blocks; everything but the network is in the measured time (parsing, the
ASGI app, the answer's bytes), and the median of the blocks' ratios is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class _Transport(asyncio.Transport):
    """A connection that takes every write at once and says when an answer's two writes are done."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.answered: asyncio.Future[None] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if self.writes % 2 == 0 and self.answered is not None:  # the head, then the body
            self.answered.set_result(None)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connected(protocol_class: Any, config: Any, loop: asyncio.AbstractEventLoop) -> tuple[Any, _Transport]:
    """A server protocol (uvicorn's, or a subclass) of ``config``'s app, connected to a ``_Transport``."""
    from uvicorn.server import ServerState

    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def on_and_off(
    sides: dict[str, tuple[Any, _Transport]],
    blocks: int,
    per_block: int,
    clock: Callable[[], float],
    after_block: Callable[[str], object] = lambda name: None,
) -> dict[str, float]:
    """``REQUEST`` fed to the "on" and "off" sides in blocks of ``per_block``, their order alternating
    from one block to the next (the first block warms up): microseconds per request by ``clock``,
    medians of the blocks, and the median of the blocks' ratios off / on. ``after_block(name)`` runs
    within each block's time."""
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for block in range(blocks + 1):
        for name in sides if block % 2 == 0 else list(sides)[::-1]:
            protocol, transport = sides[name]
            started = clock()
            for _ in range(per_block):
                transport.answered = loop.create_future()
                protocol.data_received(REQUEST)
                await transport.answered
            after_block(name)
            if block:
                times[name].append(1e6 * (clock() - started) / per_block)
    ratio = statistics.median(off / on for on, off in zip(times["on"], times["off"], strict=True))
    return {"on": statistics.median(times["on"]), "off": statistics.median(times["off"]), "ratio": ratio}


def in_process(blocks: int, per_block: int) -> dict[str, float]:
    """Microseconds per request with the limits on and off, served in this process (medians of the
    blocks), and the median of the blocks' throughput ratios (each pair of blocks back to back)."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from service.main import create_app
    from service.server_protocol import ConnectionGuard, GuardedHttpToolsProtocol, install_guard
    from service.settings import Settings

    async def run() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        sides: dict[str, tuple[HttpToolsProtocol, _Transport]] = {}
        for name, protocol_class, limited in (
            ("on", GuardedHttpToolsProtocol, True),
            ("off", HttpToolsProtocol, False),
        ):
            options: dict[str, Any] = {"log_level": "warning"} | ({} if limited else {"min_receive_rate": 0})
            settings = Settings(_env_file=None, **options)
            install_guard(ConnectionGuard.from_settings(settings))
            config = uvicorn.Config(create_app(settings), log_level="warning", server_header=False)
            sides[name] = connected(protocol_class, config, loop)
        return await on_and_off(sides, blocks, per_block, time.perf_counter)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=100, help="in process: blocks of 300 requests")
    args = parser.parse_args(argv)

    per_request = in_process(args.blocks, 300)
    print(f"in process, {args.blocks} blocks of 300 requests each way, medians:")
    print(f"{'limits_on_us_per_request':>26}: {per_request['on']:.2f}")
    print(f"{'limits_off_us_per_request':>26}: {per_request['off']:.2f}")
    print(f"{'ratio_on_over_off':>26}: {per_request['ratio']:.3f}")

    on_port, off_port = free_port(), free_port()
    env = {"XENT_LOG_LEVEL": "warning", "XENT_ACCESS_LOG": "off"}  # the limits alone
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

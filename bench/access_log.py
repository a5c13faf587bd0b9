"""What the access log costs: small-request throughput with it on (its default), sampled and off, side
by side, and the service with it on against FastAPI's constant endpoint on the same uvicorn stack.

    python -m bench.access_log [--rounds 16] [--seconds 1.5] [--connections 32] [--blocks 100]

In process first, where the difference is not lost in the noise of a shared machine: the same app
with ``XENT_ACCESS_LOG=on`` and ``off``, its logging set up as the serving process sets it up
(``logging_config``: one ``LogWriter``, here writing to a file), each fed the article's example as
bytes through uvicorn's protocol from a transport that keeps nothing (``bench.limits``), in
interleaved blocks, each "on" block ending with the writer's flush; the median of the blocks' ratios
is printed. What is measured is the process's CPU time (all its threads), so the writer thread's
formatting and writing are in it, and the waits for a busy machine to schedule a thread are not.

Then real servers on loopback, ``python -m service`` with the access log on (written to a file, as a
container's log driver takes it), on ``sample:0.1``, off, and FastAPI's constant endpoint
(``bench/baseline_app.py``), driven in turn, alternating, by ``bench.limits``'s lean client: requests
per second and per second of the server's CPU time, medians of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.limits import _Transport, connected, load, on_and_off
from bench.run import baseline_command, free_port, server, service_command


def in_process(blocks: int, per_block: int, log_path: Path) -> dict[str, float]:
    """CPU microseconds per request with the access log on and off, served in this process (medians
    of the blocks), and the median of the blocks' throughput ratios (on / off, each pair back to back)."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from service.main import create_app
    from service.observability import ACCESS_LOGGER, LogWriter, logging_config
    from service.settings import Settings

    logging.config.dictConfig(logging_config("info", "json", "on"))
    (writer,) = logging.getLogger(ACCESS_LOGGER).handlers
    assert isinstance(writer, LogWriter)
    sink = log_path.open("w")
    writer.stream = sink

    async def run() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        sides: dict[str, tuple[HttpToolsProtocol, _Transport]] = {}
        for name in ("on", "off"):
            app = create_app(Settings(_env_file=None, access_log=name))
            config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False)
            sides[name] = connected(HttpToolsProtocol, config, loop)

        def flush(name: str) -> None:
            if name == "on":
                writer.flush()  # the writer's work for this block is in this block's time

        return await on_and_off(sides, blocks, per_block, time.process_time, flush)

    try:
        return asyncio.run(run())
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # closes the writer
        sink.close()


def live(rounds: int, seconds: float, connections: int, logs: Path) -> dict[str, list[dict[str, float]]]:
    """Each server's runs, one per round, the servers' order alternating from one round to the next."""
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    ports: dict[str, int] = {}
    for name, setting in (("on", "on"), ("sample", "sample:0.1"), ("off", "off")):
        ports[name] = free_port()
        commands[name] = service_command(ports[name], 1), {"XENT_ACCESS_LOG": setting}
    ports["constant"] = free_port()
    commands["constant"] = baseline_command(ports["constant"], 1), {}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    with (
        server(commands["on"][0], ports["on"], commands["on"][1], logs / "on.log") as on,
        server(commands["sample"][0], ports["sample"], commands["sample"][1], logs / "sample.log") as sample,
        server(commands["off"][0], ports["off"], commands["off"][1], logs / "off.log") as off,
        server(
            commands["constant"][0], ports["constant"], commands["constant"][1], logs / "constant.log"
        ) as constant,
    ):
        pids = {"on": on.pid, "sample": sample.pid, "off": off.pid, "constant": constant.pid}
        for name in runs:
            load(ports[name], 1.0, connections)  # warm-up
        for round_ in range(rounds):
            order = list(runs) if round_ % 2 == 0 else list(runs)[::-1]
            for name in order:
                runs[name].append(load(ports[name], seconds, connections, pids[name]))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=100, help="in process: blocks of 300 requests")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="xent-access-log-") as folder:
        logs = Path(folder)
        per_request = in_process(args.blocks, 300, logs / "in-process.log")
        print(f"in process, {args.blocks} blocks of 300 requests each way, medians:")
        print(f"{'log_on_cpu_us_per_request':>28}: {per_request['on']:.2f}")
        print(f"{'log_off_cpu_us_per_request':>28}: {per_request['off']:.2f}")
        print(f"{'ratio_on_over_off':>28}: {per_request['ratio']:.3f}")
        runs = live(args.rounds, args.seconds, args.connections, logs)
        lines = sum(1 for _ in (logs / "on.log").open())

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    def paired(first: str, second: str, key: str) -> float:
        """The median of each round's ratio: the servers of a round ran back to back."""
        return statistics.median(a[key] / b[key] for a, b in zip(runs[first], runs[second], strict=True))

    rows: dict[str, Any] = {
        "log_on_rps": median("on", "rps"),
        "log_sample_0.1_rps": median("sample", "rps"),
        "log_off_rps": median("off", "rps"),
        "constant_endpoint_rps": median("constant", "rps"),
        "ratio_on_over_off": paired("on", "off", "rps"),
        "ratio_sample_over_off": paired("sample", "off", "rps"),
        "cpu_ratio_on_over_off": paired("on", "off", "per_cpu_second"),
        "ratio_on_over_constant": paired("on", "constant", "rps"),
        "cpu_ratio_on_over_constant": paired("on", "constant", "per_cpu_second"),
        "log_on_p99_ms": median("on", "p99_ms"),
        "log_off_p99_ms": median("off", "p99_ms"),
    }
    print(f"real servers, {args.connections} connections, {args.rounds} rounds of {args.seconds:g} s each:")
    for key, value in rows.items():
        print(f"{key:>28}: {value:.3f}" if "ratio" in key else f"{key:>28}: {value:.1f}")
    print(f"{'access lines written (on)':>28}: {lines}")


if __name__ == "__main__":
    main()

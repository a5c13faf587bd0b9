"""Where a small request's time goes: the service's parts against FastAPI's constant route, in process.

    python -m bench.request_cost            # about half a minute
    python -m bench.request_cost --quick    # fewer repeats, to check that it runs

Each app is called directly as ASGI (no HTTP, no server: what uvicorn adds is the same for both) with
the article's example, as ``/v1/cross-entropy``, the service's access log on and written to a null
stream (and off, in a second app). The service's call is also timed at each of its layers, entered
directly with what the layer above hands it: its front door (the middleware), the route's ASGI app
(the transport), ``respond`` (parse, validate, compute, serialise) and ``_parse`` (keys checked,
parsed, validated); each layer's cost is the difference with the next, measured in place, since the
same functions timed alone, in a loop of their own, run faster than they do inside a request. Times
are the process's CPU time (the access log's writer thread included), medians of rounds in which
every contender runs in turn, so the machine's noise hits them alike.

The figure to read: the service's own work (``respond``) against FastAPI's whole constant route. For
the service over HTTP to answer at 1.1x the constant endpoint's rate, all of it, middleware and
transport included, would have to cost less than the constant route by a tenth of the constant
route plus uvicorn's own share per request (``python -m bench.peers`` measures uvicorn alone).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message

from bench.baseline_app import app as constant_app
from bench.run import SEED_BODY
from service.main import create_app
from service.observability import logging_config
from service.settings import Settings

PATH = "/v1/cross-entropy"


def _scope() -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(SEED_BODY)).encode())]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def _receive() -> Message:
    return {"type": "http.request", "body": SEED_BODY, "more_body": False}


def _asgi_call(app: ASGIApp, scope: Callable[[], dict[str, Any]] = _scope) -> Callable[[], Awaitable[None]]:
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call() -> None:
        statuses.clear()
        await app(scope(), _receive, send)
        if statuses != [200]:
            raise RuntimeError(f"{PATH} answered {statuses}")

    return call


def _service() -> Any:
    """The service as ``python -m service`` builds it: the access log on, written to a null stream."""
    config = logging_config("info", "json", "on")
    config["handlers"]["default"]["stream"] = open(os.devnull, "w")  # noqa: SIM115  # for the process's life
    logging.config.dictConfig(config)
    return create_app(Settings())


async def _per_call(call: Callable[[], Any], repeats: int) -> float:
    started = time.process_time()
    for _ in range(repeats):
        result = call()
        if asyncio.iscoroutine(result):
            await result
    return (time.process_time() - started) / repeats


async def measure(quick: bool) -> dict[str, float]:
    """Microseconds per call of each contender, medians over interleaved rounds."""
    service = _service()
    route = service.lean_routes[PATH]

    def routed_scope() -> dict[str, Any]:  # what ServiceApp hands its front door
        return {**_scope(), "app": service, "route": route, "path_params": {}}

    contenders: dict[str, Callable[[], Any]] = {
        "fastapi_constant_route": _asgi_call(constant_app),
        "service": _asgi_call(service),
        "service_log_off": _asgi_call(create_app(Settings(access_log="off"))),
        "front_door": _asgi_call(service.front_door, routed_scope),
        "route": _asgi_call(route.app, routed_scope),
        "respond": lambda: route.respond(bytearray(SEED_BODY), {}),
        "parse": lambda: route._parse(bytearray(SEED_BODY)),
    }
    rounds, repeats = (3, 300) if quick else (11, 3000)
    for call in contenders.values():  # warm up
        await _per_call(call, repeats // 10)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            times[name].append(await _per_call(call, repeats))
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: check that it runs")
    t = asyncio.run(measure(parser.parse_args().quick))
    constant = t["fastapi_constant_route"]
    parts = [
        ("dispatch to the lean route (ServiceApp)", t["service"] - t["front_door"]),
        ("middleware: request id, metrics, access log, headers", t["front_door"] - t["route"]),
        ("transport: framing checks, body read, sending", t["route"] - t["respond"]),
        ("keys checked, parsed, validated", t["parse"]),
        ("computed and serialised", t["respond"] - t["parse"]),
    ]
    print("the article's example as /v1/cross-entropy, called in process; microseconds of CPU per call")
    print(f"  {'FastAPI constant route, whole app':<56} {constant:7.1f}")
    print(f"  {'service, whole app, access log off':<56} {t['service_log_off']:7.1f}")
    print(f"  {'service, whole app, access log on':<56} {t['service']:7.1f}")
    for label, value in parts:
        print(f"    {label:<54} {value:7.1f}")
    print(f"  service (log on) / FastAPI constant route:   {t['service'] / constant:5.2f}")
    print(f"  service's parse + compute / constant route:  {t['respond'] / constant:5.2f}")


if __name__ == "__main__":
    main()

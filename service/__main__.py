"""``python -m service``: flags -> settings -> uvicorn.

Flags override the ``XENT_*`` environment, which overrides the defaults in ``service.settings``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
from collections.abc import Sequence

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from service.lifecycle import PROCESS_LIFECYCLE, DrainingServer
from service.observability import logging_config
from service.server_protocol import ConnectionGuard, GuardedHttpToolsProtocol, install_guard
from service.settings import Settings

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Run the cross-entropy service (configuration: XENT_* environment variables).",
    )
    parser.add_argument("--host", help="interface to bind (XENT_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (XENT_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (XENT_WORKERS, default 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, transport_limits: bool = True) -> None:
    """Serve. ``transport_limits=False`` runs uvicorn's own protocol, without the request-head, connection
    and send-rate limits, nor the uploads' minimum rate: for ``bench/limits.py``, to measure their cost."""
    args = parse_args(argv)
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    if not transport_limits:
        os.environ["XENT_MIN_RECEIVE_RATE"] = "0"
    settings = Settings(**overrides)
    # Worker processes build their app from the environment: hand them the effective settings.
    for name, value in overrides.items():
        os.environ[f"XENT_{name.upper()}"] = str(value)

    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Workers share their counters through files here; /metrics sums them (prometheus-client).
        metrics_dir = tempfile.mkdtemp(prefix="xent-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    config = uvicorn.Config(
        "service.main:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(settings.log_level, settings.log_format, settings.access_log),
        log_level=settings.log_level,
        access_log=False,  # RequestObserver writes the access log, with request ids
        timeout_graceful_shutdown=int(settings.shutdown_timeout) or 1,
        timeout_keep_alive=settings.keep_alive_timeout,
        proxy_headers=False,
        # No WebSocket routes: an upgrade would hand the connection to uvicorn's WebSocket protocol,
        # out of reach of the connection cap (service/server_protocol.py) for good.
        ws="none",
        server_header=False,
        # The request head's size and deadline, the connection cap and the answers' minimum rate
        # (service.server_protocol); worker processes make their guard from the environment.
        http=GuardedHttpToolsProtocol if transport_limits else "httptools",
    )
    install_guard(ConnectionGuard.from_settings(settings))
    server = DrainingServer(config, drain_seconds=settings.drain_seconds, lifecycle=PROCESS_LIFECYCLE)
    # uvicorn re-raises the SIGTERM or SIGINT it handled once it has shut down, so that the default
    # action (death by signal, or a KeyboardInterrupt traceback) follows. A shutdown that completed
    # is a success, whether a supervisor (SIGTERM) or a person (Ctrl-C) asked for it: exit 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda signum, frame: None)
    try:
        if config.workers > 1:
            # uvicorn's supervisor runs its own Server in each worker: they shut down gracefully on
            # SIGTERM, without the drain delay (one process per pod is the recommended deployment).
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""``python -m service``: flags -> settings -> uvicorn.

Flags override the ``XENT_*`` environment, which overrides the defaults in ``service.settings``.
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Sequence

import uvicorn

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


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    settings = Settings(**overrides)
    # Worker processes build their app from the environment: hand them the effective settings.
    for name, value in overrides.items():
        os.environ[f"XENT_{name.upper()}"] = str(value)
    # uvicorn drains on SIGTERM, then re-raises the signal it caught so that the default action
    # (death by signal) follows. A SIGTERM-initiated shutdown that completed is a success: exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        "service.main:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
        date_header=True,
    )


if __name__ == "__main__":
    main()

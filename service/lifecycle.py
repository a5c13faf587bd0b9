"""The process's life: serving, then draining on SIGTERM, then exiting 0.

On SIGTERM the server first *drains*: ``/health/ready`` answers 503 at once, so that a load balancer or
Kubernetes stops sending new requests, while requests keep being accepted for ``drain_seconds``. Then
uvicorn stops accepting, lets the requests in flight finish (at most ``shutdown_timeout`` seconds) and
the process exits with status 0. A second signal ends the wait.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

import uvicorn

__all__ = ["PROCESS_LIFECYCLE", "DrainingServer", "Lifecycle"]


class Lifecycle:
    """Whether this process is draining; read by the readiness probe."""

    def __init__(self) -> None:
        self._draining = threading.Event()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def start_draining(self) -> None:
        self._draining.set()


#: The lifecycle of this process's server; ``app_from_environment`` gives it to the app.
PROCESS_LIFECYCLE = Lifecycle()


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` that drains for ``drain_seconds`` before it starts shutting down."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.lifecycle = lifecycle
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first = not self.lifecycle.draining
        self.lifecycle.start_draining()
        if first and sig == signal.SIGTERM and self.drain_seconds > 0:
            self._exit_at = time.monotonic() + self.drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)

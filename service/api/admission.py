"""Admission of requests with large bodies: a gate bounding how many are computed at once (and
giving memory back when they stop), and deadlines on the silence of body reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
from starlette.types import Message, Receive

from service.api.errors import Problem

#: How long the last large request must have left before memory is given back (see ComputeGate).
RELEASE_AFTER_IDLE_SECONDS: Final = 1.0


class ComputeGate:
    """How many large requests one process handles at once, over every route: one is admitted before
    its body is read, and leaves once its answer is handed to the server (a streamed answer: once it
    is computed, so that a slow reader holds up no one), so that at most that many large bodies are
    read and computed on together. The others wait their turn.

    With ``release_memory`` (``service.memory.release_free_memory`` in the serving process), once no
    large request has been in flight for ``idle_seconds``, it is called in a worker thread, so that
    an idle process gives back what its last batches used. Back-to-back batches do not pay for it.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        release_memory: Callable[[], object] | None = None,
        idle_seconds: float = RELEASE_AFTER_IDLE_SECONDS,
    ) -> None:
        self.concurrency = concurrency
        self.release_memory = release_memory
        self.idle_seconds = idle_seconds
        self._limiter: anyio.CapacityLimiter | None = None
        self._release_timer: asyncio.TimerHandle | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: an anyio limiter belongs to the event loop that runs the app.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return self._limiter

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Wait for a turn, hold it for the block."""
        try:
            async with self.limiter:
                if self._release_timer is not None:
                    self._release_timer.cancel()
                    self._release_timer = None
                yield
        finally:
            if self.release_memory is not None and self.limiter.borrowed_tokens == 0:
                loop = asyncio.get_running_loop()
                if self._release_timer is not None:
                    self._release_timer.cancel()
                self._release_timer = loop.call_later(self.idle_seconds, self._release_if_idle, loop)

    def _release_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._release_timer = None
        if self.release_memory is not None and self.limiter.borrowed_tokens == 0:
            loop.run_in_executor(None, self.release_memory)


class BodyDeadlines:
    """Cuts off (408) a request body when no part of it has arrived for ``timeout`` seconds, as nginx's
    ``client_body_timeout`` does, so that a stalled upload cannot hold its turn at the ``ComputeGate``,
    and the requests queued behind it, for ever; a slow but steady upload goes on.

    One timer per process (per event loop; uvicorn runs one) looks at the reads in progress every
    ``period`` seconds (a quarter of the timeout, from 0.05 to 1 s) and cancels those that have waited
    longer than ``timeout``: a read is cut off after ``timeout`` to ``timeout + period`` seconds of
    silence. A timer per request (``asyncio.timeout``, an anyio cancel scope) cost 7 % of the
    small-request throughput here; entering a read in a dict costs next to nothing.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.period = min(1.0, max(0.05, timeout / 4))
        self._reads: dict[asyncio.Task[Any], float] = {}  # task -> when it is cut off
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    async def read(self, receive: Receive, read_body: Callable[[Receive], Awaitable[bytearray]]) -> bytearray:
        """``read_body(receive)``, cut off with a 408 Problem after ``timeout`` seconds without a
        message from ``receive``."""
        task = asyncio.current_task()
        if task is None:  # not in an asyncio task: nothing to cancel
            return await read_body(receive)
        loop = task.get_loop()
        reads, timeout = self._reads, self.timeout
        reads[task] = loop.time() + timeout
        if self._timer is None or self._timer_loop is not loop:
            self._timer = loop.call_later(self.period, self._cut_off_silent_reads, loop)
            self._timer_loop = loop

        async def receive_in_time() -> Message:
            message = await receive()
            reads[task] = loop.time() + timeout  # something arrived: the clock starts again
            return message

        cancelling = task.cancelling()
        try:
            return await read_body(receive_in_time)
        except asyncio.CancelledError:
            # Ours only if this timer cancelled the task and nothing else did too (shutdown, say),
            # which asyncio.timeout decides the same way.
            if task not in self._expired or task.uncancel() > cancelling:
                raise
            raise Problem(
                408,
                f"no part of the request body arrived for {timeout:g} seconds (XENT_BODY_TIMEOUT)",
            ) from None
        finally:
            del reads[task]
            self._expired.discard(task)

    def _cut_off_silent_reads(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = self._timer_loop = None
        try:
            now = loop.time()
            for task, deadline in self._reads.items():
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
        finally:
            if self._reads:
                self._timer = loop.call_later(self.period, self._cut_off_silent_reads, loop)
                self._timer_loop = loop

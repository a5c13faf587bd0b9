"""Admission of requests with large bodies: a gate bounding how many are computed at once (and
giving memory back when they stop), and deadlines on the silence and the rate of body reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio
from starlette.types import Message, Receive

from service.api.errors import Problem
from service.budget import BudgetExceeded, BudgetFull, MemoryBudget, Reservation

#: How long the last large request must have left before memory is given back (see ComputeGate).
RELEASE_AFTER_IDLE_SECONDS: Final = 1.0


class ComputeGate:
    """How many large requests one process computes at once, over every route: one is admitted once
    its whole body is in hand (read into the memory budget, so that a slow upload holds no turn), and
    leaves once its answer is made (a streamed answer: once it is ready to go, so that a slow reader
    holds up no one). The others wait their turn.

    With ``release_memory`` (``service.memory.release_free_memory`` in the serving process), once no
    large request has been computed for ``idle_seconds``, it is called in a worker thread, so that
    an idle process gives back what its last batches used; ``schedule_release`` asks for the same
    (the memory budget does, when the last answer has left). Back-to-back batches do not pay for it.
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
            self.schedule_release()

    def schedule_release(self) -> None:
        """Give memory back in ``idle_seconds``, unless a large request is computed by then."""
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
    ``client_body_timeout`` does, or, with a ``min_rate`` (bytes per second), when it arrives slower
    than that: after ``timeout`` seconds each byte received buys ``1 / min_rate`` seconds more, as
    Apache's ``mod_reqtimeout`` ``MinRate``. So a stalled or trickling upload cannot hold its share
    of the memory budget, and the requests queued behind it, for ever; a steady upload goes on.

    One timer per process (per event loop; uvicorn runs one) looks at the reads in progress every
    ``period`` seconds (a quarter of the timeout, from 0.05 to 1 s) and cancels those that have waited
    longer than ``timeout``: a read is cut off after ``timeout`` to ``timeout + period`` seconds of
    silence. A timer per request (``asyncio.timeout``, an anyio cancel scope) cost 7 % of the
    small-request throughput here; entering a read in a dict costs next to nothing.
    """

    def __init__(self, timeout: float, min_rate: int = 0) -> None:
        self.timeout = timeout
        self.min_rate = min_rate
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
        reads, timeout, rate = self._reads, self.timeout, self.min_rate
        started = last = loop.time()
        received = 0
        reads[task] = started + timeout
        if self._timer is None or self._timer_loop is not loop:
            self._timer = loop.call_later(self.period, self._cut_off_silent_reads, loop)
            self._timer_loop = loop

        async def receive_in_time() -> Message:
            nonlocal last, received
            message = await receive()
            last = loop.time()  # something arrived: the clock of silence starts again
            if rate:
                received += len(message.get("body", b""))
                reads[task] = min(last, started + received / rate) + timeout
            else:
                reads[task] = last + timeout
            return message

        cancelling = task.cancelling()
        try:
            return await read_body(receive_in_time)
        except asyncio.CancelledError:
            # Ours only if this timer cancelled the task and nothing else did too (shutdown, say),
            # which asyncio.timeout decides the same way.
            if task not in self._expired or task.uncancel() > cancelling:
                raise
            if loop.time() - last >= timeout:
                raise Problem(
                    408,
                    f"no part of the request body arrived for {timeout:g} seconds (XENT_BODY_TIMEOUT)",
                ) from None
            raise Problem(
                408,
                f"the request body arrived slower than {rate} bytes per second (XENT_MIN_RECEIVE_RATE): "
                f"{received} bytes in {loop.time() - started:.1f} seconds",
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


async def reserve(budget: MemoryBudget, share: Reservation, nbytes: int) -> None:
    """Resize ``share`` of the memory budget to ``nbytes``, or refuse the request: 413 when it could
    never fit, 503 with ``Retry-After`` when none came free within ``XENT_MEMORY_WAIT``."""
    try:
        await share.resize(nbytes)
    except BudgetExceeded as error:
        raise Problem(
            413,
            f"this request needs about {error.wanted} bytes of memory, more than the whole budget "
            f"of {error.budget} bytes (XENT_MEMORY_BUDGET)",
        ) from None
    except BudgetFull as error:
        raise Problem(
            503,
            "the memory for large requests is in use: none came free within "
            f"{error.waited:g} seconds (XENT_MEMORY_WAIT); retry later",
            headers={"Retry-After": str(budget.retry_after())},
        ) from None

"""One memory budget per process, which every large request's body, arrays and answer count against.

A large request reserves its declared body length before a byte of it is read (a body of unknown
length: as it grows), then, once the body is in hand, what computing and answering it will hold
(``cost``), and keeps that until the client has taken the last byte of its answer or the connection
is gone. So the memory that large requests hold together stays within the budget, whatever the
clients do: those that read slowly, or not at all, hold their own share and nobody else's. (No request
waits while holding a share, or requests holding part of the budget could wait for each other until
all timed out: one that must wait for more gives its share back and waits for the whole, and the
bytes it already holds go uncounted meanwhile.)

A request that does not fit waits its turn, first come first served, at most ``wait`` seconds, then
gets 503 with ``Retry-After``; one that could never fit (more than the whole budget) gets 413 at once.
When the budget is back to zero, ``on_empty`` is called: the moment to give idle memory back.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

__all__ = ["BudgetExceeded", "BudgetFull", "MemoryBudget", "Reservation", "default_memory_budget"]

#: The default budget's share of the memory the process may use.
DEFAULT_SHARE = 0.6
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def memory_limit(cgroup_files: tuple[Path, ...] = _CGROUP_LIMITS) -> int:
    """The container's memory limit in bytes (cgroup v2, then v1), or physical memory without one."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in cgroup_files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return min(int(text), physical)  # v1 says "no limit" with a huge number
    return physical


def default_memory_budget(workers: int = 1, share: float = DEFAULT_SHARE) -> int:
    """``share`` of the memory limit, divided among ``workers`` processes."""
    return int(memory_limit() * share) // max(1, workers)


class BudgetFull(Exception):
    """No room came free in time (503, retry later)."""

    def __init__(self, wanted: int, budget: int, waited: float) -> None:
        super().__init__(f"{wanted} bytes did not fit in the budget of {budget} within {waited:g} s")
        self.wanted = wanted
        self.budget = budget
        self.waited = waited


class BudgetExceeded(Exception):
    """More than the whole budget: this can never fit (413)."""

    def __init__(self, wanted: int, budget: int) -> None:
        super().__init__(f"{wanted} bytes are more than the whole budget of {budget}")
        self.wanted = wanted
        self.budget = budget


class Reservation:
    """One request's share of the budget; ``resize`` it as the request goes, ``release`` it once."""

    __slots__ = ("_budget", "nbytes")

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget
        self.nbytes = 0

    async def resize(self, nbytes: int) -> None:
        """Hold ``nbytes`` from now on: less at once, more when there is room (may raise
        ``BudgetFull`` or ``BudgetExceeded``; a share that had to wait holds nothing then)."""
        await self._budget._resize(self, max(0, nbytes))

    def release(self) -> None:
        """Give the whole share back (again: nothing happens)."""
        self._budget._set(self, 0)


class MemoryBudget:
    """``total`` bytes shared by the large requests of one process (one event loop)."""

    def __init__(self, total: int, *, wait: float, on_empty: Callable[[], object] | None = None) -> None:
        self.total = total
        self.wait = wait
        self.on_empty = on_empty
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()  # (more bytes, wake-up)

    def reservation(self) -> Reservation:
        return Reservation(self)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: about as long as a request waits here."""
        return max(1, math.ceil(self.wait))

    async def _resize(self, reservation: Reservation, nbytes: int) -> None:
        more = nbytes - reservation.nbytes
        if more <= 0:
            self._set(reservation, nbytes)
            return
        if nbytes > self.total:
            raise BudgetExceeded(nbytes, self.total)
        if not self._waiters and self.used + more <= self.total:
            self._set(reservation, nbytes)
            return
        if reservation.nbytes:
            # No one waits while holding a share: requests that each hold part of the budget and wait
            # for more would wait for each other until every one timed out. Give it back and wait for
            # the whole (the bytes stay in memory meanwhile: the count runs short by them, briefly).
            self._set(reservation, 0)
            more = nbytes
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (more, waiter)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await waiter  # the room is counted as ours when this is woken
        except BaseException as error:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif waiter.done() and not waiter.cancelled():
                self.used -= more  # woken, then timed out or cancelled in the same step: give it back
            self._changed()  # the one behind it may fit now
            if isinstance(error, TimeoutError):
                raise BudgetFull(more, self.total, self.wait) from None
            raise
        reservation.nbytes = nbytes

    def _set(self, reservation: Reservation, nbytes: int) -> None:
        if nbytes == reservation.nbytes:
            return
        self.used += nbytes - reservation.nbytes
        reservation.nbytes = nbytes
        self._changed()

    def _changed(self) -> None:
        if self._waiters:
            self._wake()
        elif self.used == 0 and self.on_empty is not None:
            self.on_empty()

    def _wake(self) -> None:
        """Hand room to the waiters in order, as long as the first one fits."""
        while self._waiters:
            more, waiter = self._waiters[0]
            if waiter.done():  # timed out or cancelled: its ``finally`` removes it
                self._waiters.popleft()
                continue
            if self.used + more > self.total:
                return
            self._waiters.popleft()
            self.used += more
            waiter.set_result(None)

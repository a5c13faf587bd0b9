"""Memory given back: the allocator tuning of the serving process and the gate's idle release."""

from __future__ import annotations

import asyncio
import ctypes.util
import subprocess
import sys
from typing import Any

import pytest

from service.api.routing import ComputeGate
from service.memory import release_free_memory

GLIBC = sys.platform.startswith("linux") and ctypes.util.find_library("c") == "libc.so.6"


@pytest.mark.skipif(
    not GLIBC, reason="SKIPPED: the allocator tuning applies to glibc only; a no-op elsewhere"
)
def test_glibc_accepts_the_tuning_and_the_release() -> None:
    # In a child process: mallopt changes the whole process, and this one runs every other test.
    code = (
        "from service.memory import release_free_memory, tune_allocator\n"
        "print(tune_allocator())\n"
        "release_free_memory()\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "True"


def test_the_factory_tunes_the_allocator_and_passes_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    from service import main

    built: list[dict[str, Any]] = []
    monkeypatch.setattr(main, "tune_allocator", lambda: True)
    monkeypatch.setattr(main, "create_app", lambda settings, **options: built.append(options))
    main.app_from_environment()
    assert built[0]["release_memory"] is release_free_memory
    monkeypatch.setattr(main, "tune_allocator", lambda: False)
    main.app_from_environment()
    assert built[1]["release_memory"] is None  # not glibc: nothing to give back with


class _Releases:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def _wait_for(releases: _Releases, count: int, seconds: float = 5.0) -> None:
    """Wait until ``releases`` has been called ``count`` times (it runs in the loop's own timer), for
    ``seconds`` at most: a loaded machine wakes the timer late, never early."""
    deadline = asyncio.get_running_loop().time() + seconds
    while releases.count < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_memory_is_released_once_the_gate_has_been_idle(anyio_backend: str) -> None:
    releases = _Releases()
    # Idle 1 s against steps of 0.02 s: only a stall of most of a second could make a step look idle.
    gate = ComputeGate(2, release_memory=releases, idle_seconds=1.0)

    async def request(seconds: float) -> None:
        async with gate.admit():
            await asyncio.sleep(seconds)

    await asyncio.gather(request(0.02), request(0.04))
    assert releases.count == 0  # not while a request is in flight, not at once
    await _wait_for(releases, 1)
    assert releases.count == 1  # once both left and the gate stayed idle

    await request(0.01)
    await asyncio.sleep(0.02)
    await request(0.01)  # back to back: the pending release is put off again
    await asyncio.sleep(0.02)
    assert releases.count == 1
    await _wait_for(releases, 2)
    assert releases.count == 2
    await asyncio.sleep(1.5)  # longer than idle_seconds: one release per idle spell, no more
    assert releases.count == 2


@pytest.mark.anyio
async def test_a_failing_request_still_leaves_the_gate(anyio_backend: str) -> None:
    releases = _Releases()
    gate = ComputeGate(1, release_memory=releases, idle_seconds=0.01)
    with pytest.raises(RuntimeError):
        async with gate.admit():
            raise RuntimeError("boom")
    assert gate.limiter.borrowed_tokens == 0
    await _wait_for(releases, 1)
    assert releases.count == 1


@pytest.mark.anyio
async def test_without_a_release_nothing_is_scheduled(anyio_backend: str) -> None:
    gate = ComputeGate(1)
    async with gate.admit():
        pass
    assert gate._release_timer is None

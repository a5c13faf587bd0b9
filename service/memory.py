"""Keep a long-running process its size: the allocator's settings, and giving memory back when idle.

Large requests allocate and free hundreds of MiB: their body, their arrays, their answer, and
orjson's scratch space (about 12 times each megabyte of JSON it parses). glibc's defaults serve this
badly in a server. Its mmap threshold starts at 128 KiB and rises to the size of every mapped block
freed, so that after a few large requests everything up to 32 MiB comes from the heap arenas; every
thread that allocates may get an arena of its own; and freed memory in the middle of an arena stays
resident. Under a steady mix of small and large requests the resident size ratchets up: measured
here, a 20-second soak grew the idle process by 50 to 80 %.

What we do instead, measured the same way (``bench/load.py``, idle RSS after warm-up and at the end):

- fixed thresholds (which turns the dynamic adjustment off): blocks of 16 MiB and more get their own
  mapping, returned on ``free``; the top of an arena is returned once 32 MiB of it are free. Blocks
  below 16 MiB (orjson's scratch for a 1 MiB group of JSON, the core's row blocks) reuse heap pages
  instead of faulting in fresh ones: returning every block above 128 KiB made a 4096 x 1000 request
  1.8 times slower.
- one arena: ``malloc_trim`` returns the free top of the main arena only, so in a thread's arena up
  to the trim threshold would stay resident (measured: 30 MiB after a 3-minute soak). Python code
  allocates under the interpreter lock anyway, and the core's threads allocate little.
- ``malloc_trim(0)`` once no large request has been in flight for a second (``ComputeGate``), which
  returns the free pages of the arena, its top included.

With these the idle process stays within a few percent over a 20-second or a 3-minute soak, and a
4096 x 1000 request takes about 10 % longer than with the defaults. These settings are process-wide,
so the serving process applies them (``app_from_environment``), not ``create_app``. Elsewhere than
glibc (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_free_memory", "tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024
ARENA_MAX = 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None  # not glibc
    return libc


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds and keep it to one arena; True when all three took effect."""
    libc = _glibc()
    if libc is None:
        return False
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        (_M_ARENA_MAX, ARENA_MAX),
    )
    applied = [bool(libc.mallopt(option, value)) for option, value in settings]  # every one, in order
    return all(applied)


def release_free_memory() -> None:
    """Return the free pages of the heap to the system (``malloc_trim(0)``); takes milliseconds."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)

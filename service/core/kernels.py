"""The row-wise softmax pass, in blocks of rows that stay in cache.

Computing softmax and its relatives naively takes five or six passes over an (M, C) array (max,
subtract, exp, sum, divide, ...), each reading and writing main memory. Here the rows are processed in
blocks of about ``BLOCK_ELEMENTS`` numbers, so that every pass after the first reads data that is
still in the CPU cache, and ``exp`` is computed once per element; the caller derives softmax,
log-softmax, losses and gradients from the same block.

NumPy reduces short rows slowly (a 10-class row costs more per element than a 1000-class one), so
when C is small a block is first copied class-major, shape (C, n): its reductions then run over C
long contiguous vectors. The block's arrays are handed out as (n, C) views either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BLOCK_ELEMENTS",
    "PARALLEL_MIN_ELEMENTS",
    "RowBlock",
    "for_each_row_block",
    "get_threads",
    "set_threads",
    "softmax_row_blocks",
    "softmax_rows",
]

FloatArray = NDArray[np.floating[Any]]

#: Numbers per block: 512 KiB of float64, 256 KiB of float32, inside a core's L2 cache.
BLOCK_ELEMENTS: Final = 1 << 16
#: At or below this many classes a block is worked on class-major.
SMALL_CLASS_COUNT: Final = 64
#: Below this many numbers one thread does the pass: starting others costs more than it saves.
PARALLEL_MIN_ELEMENTS: Final = 1 << 18


@dataclass(slots=True)
class RowBlock:
    """One block of rows ``rows`` of x, and what the softmax pass computed for it.

    ``shifted = x - max`` and ``exp = exp(shifted)`` are (n, C) views of scratch buffers that the next
    block overwrites: copy what you keep. ``total`` is the row sum of ``exp`` (>= 1, so its log is
    finite), ``argmax`` the first index of each row's maximum, when asked for.
    """

    rows: slice
    shifted: FloatArray
    exp: FloatArray
    total: FloatArray
    argmax: NDArray[np.intp] | None


def softmax_row_blocks(
    x: FloatArray, *, want_argmax: bool = False, block_elements: int = BLOCK_ELEMENTS, offset: int = 0
) -> Iterator[RowBlock]:
    """Blocks of the softmax pass over the rows of ``x`` (M, C); every exponent is <= 0, no overflow.

    ``offset`` is added to the blocks' row numbers (``x`` is then a slice of a larger array).
    """
    rows, classes = x.shape
    block = min(rows, max(1, block_elements // classes))
    class_major = classes <= SMALL_CLASS_COUNT and rows > 1
    dtype = x.dtype
    if class_major:
        shifted_buffer = np.empty((classes, block), dtype)
        exp_buffer = np.empty((classes, block), dtype)
    else:
        shifted_buffer = np.empty((block, classes), dtype)
        exp_buffer = np.empty((block, classes), dtype)
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        n = stop - start
        if class_major:
            shifted = shifted_buffer[:, :n]
            np.copyto(shifted, x[start:stop].T)
            argmax = np.argmax(shifted, axis=0) if want_argmax else None
            shifted -= np.maximum.reduce(shifted, axis=0)
            exp = np.exp(shifted, out=exp_buffer[:, :n])
            total = np.add.reduce(exp, axis=0)
            yield RowBlock(slice(offset + start, offset + stop), shifted.T, exp.T, total, argmax)
        else:
            source = x[start:stop]
            argmax = np.argmax(source, axis=1) if want_argmax else None
            shifted = np.subtract(
                source, np.maximum.reduce(source, axis=1, keepdims=True), out=shifted_buffer[:n]
            )
            exp = np.exp(shifted, out=exp_buffer[:n])
            total = np.add.reduce(exp, axis=1)
            yield RowBlock(slice(offset + start, offset + stop), shifted, exp, total, argmax)


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_threads = 1


def set_threads(threads: int) -> None:
    """How many threads one large softmax pass may use (as ``torch.set_num_threads``); default 1."""
    global _threads
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    _threads = threads


def get_threads() -> int:
    return _threads


def _shared_pool(threads: int) -> ThreadPoolExecutor:
    """A pool with at least ``threads`` workers, grown (never shrunk) when more are asked for."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < threads:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="xent-core")
            _pool_size = threads
        return _pool


def for_each_row_block(
    x: FloatArray,
    consume: Callable[[RowBlock], None],
    *,
    want_argmax: bool = False,
    threads: int | None = None,
) -> None:
    """Run ``consume`` on every block of the softmax pass over ``x``, on up to ``threads`` threads
    (``set_threads``' value by default).

    NumPy releases the interpreter lock inside its loops, so threads working on different rows run
    in parallel; ``consume`` must only write rows of its own block (different blocks never share a
    row). Small arrays stay on the calling thread.
    """
    rows = x.shape[0]
    threads = max(1, min(_threads if threads is None else threads, rows))
    if threads == 1 or x.size < PARALLEL_MIN_ELEMENTS:
        for block in softmax_row_blocks(x, want_argmax=want_argmax):
            consume(block)
        return

    def work(start: int, stop: int) -> None:
        for block in softmax_row_blocks(x[start:stop], want_argmax=want_argmax, offset=start):
            consume(block)

    bounds = [rows * part // threads for part in range(threads + 1)]
    pool = _shared_pool(threads)
    futures = [pool.submit(work, bounds[i], bounds[i + 1]) for i in range(threads)]
    for future in futures:
        future.result()


def softmax_rows(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``softmax`` and ``log_softmax`` of every row of ``x`` (M, C), from one pass of blocks.

    ``softmax = exp(x - max) / total`` and ``log_softmax = (x - max) - log(total)`` with
    ``total = sum(exp(x - max)) >= 1``: no exponent is positive, and the log of the total is finite.
    """
    probabilities = np.empty_like(x)
    log_probabilities = np.empty_like(x)

    def consume(block: RowBlock) -> None:
        np.divide(block.exp, block.total[:, None], out=probabilities[block.rows])
        np.subtract(block.shifted, np.log(block.total)[:, None], out=log_probabilities[block.rows])

    for_each_row_block(x, consume)
    return probabilities, log_probabilities

"""The small-input path against the general one, on the article's example, side by side.

    python bench/small_path.py            # a few seconds: the ratio for each dtype and set of outputs
    python bench/small_path.py --quick    # fewer repeats, to check that it runs

Inputs of up to ``SMALL_INPUT_LIMIT`` numbers are computed in Python floats (``service.core.small``);
here the same calls run with that limit at 0, forcing the NumPy path, interleaved with the small ones so
that the machine's noise hits both alike. Times are thread CPU time (``time.thread_time``), medians of
rounds of repeated calls. The figure to keep: the general path's time over the small path's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import service.core.small as small
from service.core import CrossEntropyOutput, cross_entropy
from service.core.vocabulary import CROSS_ENTROPY_OUTPUTS

EVERY: list[CrossEntropyOutput] = list(CROSS_ENTROPY_OUTPUTS)  # type: ignore[arg-type]


def _per_call(function: Callable[[], object], repeats: int) -> float:
    started = time.thread_time()
    for _ in range(repeats):
        function()
    return (time.thread_time() - started) / repeats


def measure(quick: bool) -> list[tuple[str, float, float]]:
    x, target = np.array([[-1, 0.5, 2], [-1, 0.5, 3]]), np.array([1, 2])
    rounds, repeats = (3, 200) if quick else (15, 3000)
    rows = []
    for dtype in ("float64", "float32"):
        default: list[CrossEntropyOutput] = ["losses", "softmax"]
        for label, outputs in (("losses, softmax", default), ("every output", EVERY)):

            def call(dtype: str = dtype, outputs: list[CrossEntropyOutput] = outputs) -> object:
                return cross_entropy(x, target, dtype=dtype, outputs=outputs)  # type: ignore[arg-type]

            fast, slow = [], []
            for _ in range(rounds):
                fast.append(_per_call(call, repeats))
                small.SMALL_INPUT_LIMIT = 0  # type: ignore[misc]
                try:
                    slow.append(_per_call(call, repeats))
                finally:
                    small.SMALL_INPUT_LIMIT = 64  # type: ignore[misc]
            rows.append((f"{dtype}, {label}", statistics.median(fast), statistics.median(slow)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: check that it runs")
    arguments = parser.parse_args()
    print("the article's example (2 x 3): small path / general path, microseconds per call")
    for label, fast, slow in measure(arguments.quick):
        print(f"  {label:<26} {fast * 1e6:7.2f} / {slow * 1e6:7.2f}   general is {slow / fast:4.1f}x")


if __name__ == "__main__":
    main()

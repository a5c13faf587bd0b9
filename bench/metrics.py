"""What the metrics cost: the loss alone, the loss with every metric in the same call, and the same
numbers from scikit-learn and torchmetrics called one by one, side by side in one run.

    python bench/metrics.py            # about a minute: 200,000 x 10 logits
    python bench/metrics.py --quick    # a small input, few repeats: check that it runs

Each body is the core function (no HTTP) or the library calls, on the same float64 arrays; times are
thread CPU time (``time.thread_time``), medians of interleaved rounds, so that the machine's noise hits
every body alike. The figures to keep are the ratios to the baseline, the loss alone (``losses``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.core import cross_entropy
from service.core.vocabulary import CROSS_ENTROPY_METRICS

METRICS: list[Any] = list(CROSS_ENTROPY_METRICS)


def _libraries(logits: np.ndarray[Any, Any], target: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> object:
    """The same figures as separate library calls (what a caller does without the metrics)."""
    import torch
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.softmax(torch.from_numpy(logits), dim=1)
    q = p.numpy()
    labels = list(range(logits.shape[1]))
    loss = log_loss(target, q, sample_weight=v, labels=labels)
    return (
        loss,
        accuracy_score(target, q.argmax(1), sample_weight=v),
        top_k_accuracy_score(target, q, k=5, sample_weight=v, labels=labels),
        np.exp(loss),
        torch.special.entr(p).sum(1),
        brier_score_loss(target, q, sample_weight=v, labels=labels),
        multiclass_calibration_error(p, torch.from_numpy(target), len(labels), n_bins=15, norm="l1"),
    )


def _per_call(function: Callable[[], object], repeats: int) -> float:
    started = time.thread_time()
    for _ in range(repeats):
        function()
    return (time.thread_time() - started) / repeats


def measure(quick: bool) -> list[tuple[str, float]]:
    rows, classes = (2000, 10) if quick else (200_000, 10)
    rounds, repeats = (2, 2) if quick else (5, 3)
    rng = np.random.default_rng(17)
    logits = rng.normal(0, 2, (rows, classes))
    target = rng.integers(0, classes, rows)
    v = rng.uniform(0, 2, rows)
    bodies: dict[str, Callable[[], object]] = {
        "losses (baseline)": lambda: cross_entropy(logits, target, outputs=["losses"]),
        "losses + sample_weight": lambda: cross_entropy(logits, target, sample_weight=v, outputs=["losses"]),
        "losses + every metric": lambda: cross_entropy(
            logits, target, sample_weight=v, outputs=["losses", *METRICS]
        ),
        "scikit-learn + torchmetrics": lambda: _libraries(logits, target, v),
    }
    for body in bodies.values():
        body()  # warm up: the libraries' imports and first calls are not timed
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(rounds):
        for name, body in bodies.items():
            times[name].append(_per_call(body, repeats))
    return [(name, statistics.median(values)) for name, values in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small input, few repeats: check that it runs")
    arguments = parser.parse_args()
    results = measure(arguments.quick)
    baseline = results[0][1]
    size = "2,000 x 10" if arguments.quick else "200,000 x 10"
    print(f"{size} float64 logits, core calls (no HTTP): milliseconds per call, ratio to the loss alone")
    for label, seconds in results:
        print(f"  {label:<30} {seconds * 1e3:9.2f} ms   {seconds / baseline:5.2f}x")


if __name__ == "__main__":
    main()

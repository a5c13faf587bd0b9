"""The computation every peer serves: what ``/v1/cross-entropy`` answers by default, in NumPy.

Imported by the peers' runtimes (``mlserver_runtime.py``, ``bentoml_service.py``) inside their own
virtual environments, where only NumPy is installed beside the peer; the unit tests check it against
``service.core`` so that the benchmark compares the same work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def cross_entropy(
    logits: NDArray[Any], target: NDArray[Any]
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Mean loss, per-sample losses and softmax of ``logits`` (N, C) against class indices ``target`` (N,).

    losses[i] = logsumexp(x[i]) - x[i, t[i]], loss = mean(losses), softmax = exp(x - logsumexp(x)).
    Stable: every row is shifted by its maximum before ``exp``, so nothing overflows. As a minimal
    runtime would, it checks nothing: a negative target indexes from the end (NumPy's wrap), a NaN
    flows through.
    """
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target, dtype=np.int64)
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_total = np.log(total)
    losses = log_total[:, 0] - shifted[np.arange(len(t)), t]
    return float(losses.mean()), losses, exp / total

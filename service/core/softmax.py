"""Numerically stable softmax, log-softmax and log-sum-exp.

All three shift by the maximum along the reduced axis before exponentiating:

    logsumexp(x) = m + log(sum_j exp(x_j - m)),   m = max_j x_j

so every exponent is <= 0 and ``exp`` cannot overflow, and at least one term of the sum is exactly 1,
so its log cannot underflow to -inf. Logits of +-1e300 therefore give exact results; only a spread
``max - min`` beyond the float range (about 1.8e308) is out of reach, and callers reject it beforehand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FloatArray", "log_softmax", "logsumexp", "softmax", "softmax_and_log_softmax"]

FloatArray = NDArray[np.floating[Any]]


def _shifted(x: FloatArray, axis: int) -> FloatArray:
    # Subtracting the maximum makes every exponent <= 0: exp() cannot overflow.
    shifted: FloatArray = x - np.max(x, axis=axis, keepdims=True)
    return shifted


def logsumexp(x: FloatArray, axis: int = -1) -> FloatArray:
    """``log(sum(exp(x), axis))`` without overflow; the reduced axis is kept with size 1.

    Shapes: ``x`` is any shape with a non-empty ``axis``; the result has ``x.shape`` with
    ``shape[axis] == 1``.
    """
    m = np.max(x, axis=axis, keepdims=True)
    result: FloatArray = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return result


def log_softmax(x: FloatArray, axis: int = -1) -> FloatArray:
    """``log_softmax(x)_i = x_i - logsumexp(x)`` along ``axis``; same shape and dtype as ``x``.

    Computed as ``(x - m) - log(sum(exp(x - m)))``: never ``log(softmax(x))``, which is -inf as soon as
    a probability underflows.
    """
    shifted = _shifted(x, axis)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def softmax(x: FloatArray, axis: int = -1) -> FloatArray:
    """``softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`` along ``axis``; same shape as ``x``.

    Each slice along ``axis`` sums to 1 up to rounding.
    """
    e = np.exp(_shifted(x, axis))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def softmax_and_log_softmax(x: FloatArray, axis: int = -1) -> tuple[FloatArray, FloatArray]:
    """Both ``softmax(x)`` and ``log_softmax(x)`` along ``axis`` from a single ``exp`` pass."""
    shifted = _shifted(x, axis)
    e = np.exp(shifted)
    total = np.sum(e, axis=axis, keepdims=True)
    e /= total
    shifted -= np.log(total)
    return e, shifted

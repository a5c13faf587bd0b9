"""Numerically stable softmax, log-softmax and log-sum-exp.

``tempered_softmax`` (the /v1/softmax and /v2 ``softmax`` computation) runs the one softmax kernel
every endpoint uses, ``kernels.softmax_rows``; the plain functions here are its test oracles.

All three shift by the maximum along the reduced axis before exponentiating:

    logsumexp(x) = m + log(sum_j exp(x_j - m)),   m = max_j x_j

so every exponent is <= 0 and ``exp`` cannot overflow, and at least one term of the sum is exactly 1,
so its log cannot underflow to -inf. Logits of +-1e300 therefore give exact results; only a spread
``max - min`` beyond the float range (about 1.8e308) is out of reach, and callers reject it beforehand.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core.checks import cast_to_dtype, check_finite, format_number, raise_if
from service.core.errors import InvalidInputError, Issue
from service.core.kernels import softmax_rows
from service.core.options import COMPUTE_DTYPES, ComputeDtype, check_choice

__all__ = [
    "FloatArray",
    "default_dim",
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_and_log_softmax",
    "tempered_softmax",
]

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


def default_dim(ndim: int) -> int:
    """The class dimension when none is given: 1 for batched input (ndim >= 2), else 0."""
    return 1 if ndim >= 2 else 0


def tempered_softmax(
    logits: NDArray[Any],
    *,
    temperature: float = 1.0,
    dim: int | None = None,
    dtype: ComputeDtype = "float64",
) -> tuple[FloatArray, FloatArray]:
    """``softmax(logits / T, dim)`` and ``log_softmax(logits / T, dim)``.

    ``dim`` may be negative (counted from the end); by default 1 for ndim >= 2, else 0 (PyTorch's
    implicit choice is deprecated and differs for 3-D input, so it is fixed here). As ``T -> 0`` the
    softmax approaches the one-hot of the argmax; as ``T`` grows, the uniform distribution.

    Raises:
        InvalidInputError: for empty or non-finite logits, a temperature that is not a positive
            finite number, a ``dim`` out of range, or logits / T whose spread overflows the dtype.
    """
    issues = check_choice("dtype", dtype, COMPUTE_DTYPES)
    if not (math.isfinite(temperature) and temperature > 0):
        msg = f"temperature = {format_number(temperature)} must be a positive finite number"
        issues.append(Issue(("temperature",), msg, "out_of_range"))
    if logits.ndim == 0 or logits.size == 0:
        msg = f"logits has shape {logits.shape}: an array with at least one element per dimension is needed"
        issues.append(Issue(("logits",), msg, "shape"))
    elif dim is not None and not -logits.ndim <= dim < logits.ndim:
        msg = f"dim = {dim} is out of range for logits with {logits.ndim} dimension(s)"
        msg += f" (valid: {-logits.ndim} to {logits.ndim - 1})"
        issues.append(Issue(("dim",), msg, "out_of_range"))
    raise_if(issues)

    axis = default_dim(logits.ndim) if dim is None else dim % logits.ndim
    wide: FloatArray = logits.astype(np.float64, copy=False)
    raise_if(check_finite("logits", wide))
    x, cast_issues = cast_to_dtype("logits", wide, dtype)
    raise_if(cast_issues)
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf is nan: both caught below
        scaled = x / x.dtype.type(temperature)
        spread = np.max(scaled, axis=axis) - np.min(scaled, axis=axis)
    if not np.all(np.isfinite(spread)):
        msg = (
            f"logits / temperature overflows {dtype} (temperature = {format_number(temperature)}); "
            "use a larger temperature or smaller logits"
        )
        raise InvalidInputError.single(("temperature",), msg, "overflow")
    return _along(scaled, axis)


def _along(x: FloatArray, axis: int) -> tuple[FloatArray, FloatArray]:
    """``softmax_rows`` along ``axis`` of an array of any shape; results C-contiguous, as ``x``."""
    moved = np.moveaxis(x, axis, -1)
    probabilities, log_probabilities = softmax_rows(moved.reshape(-1, moved.shape[-1]))
    if axis == x.ndim - 1:
        return probabilities.reshape(x.shape), log_probabilities.reshape(x.shape)
    return (
        np.ascontiguousarray(np.moveaxis(probabilities.reshape(moved.shape), -1, axis)),
        np.ascontiguousarray(np.moveaxis(log_probabilities.reshape(moved.shape), -1, axis)),
    )

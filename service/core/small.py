"""Cross-entropy of a handful of logits with index targets, in plain Python floats.

The formulas are those of ``service.core.multiclass``; for inputs of up to ``SMALL_INPUT_LIMIT``
numbers NumPy's cost per call (about a microsecond, some forty calls per request) outweighs the
arithmetic, and Python floats do it about five times faster. Every function here answers only inputs
the general path would accept: anything else returns ``None`` and the general path runs, with its
error messages.

For float32 the inputs (logits, weights, label smoothing) are first rounded to float32 as the general
path rounds them; the arithmetic is then done in double and each result rounded to float32 once, which
is at least as close to the exact value as float32 arithmetic gets. Logits beyond +-1e30 and class
weights beyond 1e6 or below float32's smallest normal number (other than 0) are left to the general
path: then none of its float32 intermediates (a row's dot product, a batch's sum) can overflow where
double does not, and both paths accept the same inputs.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from service.core.options import ComputeDtype, Reduction, reduction_divisor
from service.core.scores import DEFAULT_IGNORE_INDEX
from service.core.vocabulary import CrossEntropyResult

__all__ = ["SMALL_INPUT_LIMIT", "small_logits"]

#: Inputs up to this many numbers take ``small_logits``.
SMALL_INPUT_LIMIT: Final = 64

_FLOAT32_SMALL_LOGIT_BOUND: Final = 1e30
_FLOAT32_SMALL_WEIGHT_BOUND: Final = 1e6
_FLOAT32_SMALLEST_NORMAL: Final = float(np.finfo(np.float32).tiny)
#: Doubles from this magnitude on round to float32 infinity (2**128 less half an ulp).
_FLOAT32_OVERFLOW: Final = 3.4028235677973366e38


def _fits_float32(value: float) -> bool:
    """Whether a double rounds to a finite float32."""
    return -_FLOAT32_OVERFLOW < value < _FLOAT32_OVERFLOW


@dataclass(slots=True)
class _SmallInput:
    """The input as Python lists, in the compute dtype's values; ``fits`` says whether a result is
    finite in that dtype."""

    shape: tuple[int, ...]
    batch: list[list[float]]
    targets: list[int]
    weights: list[float] | None
    s: float
    logit_bound: float
    fits: Callable[[float], bool]
    float_type: type[np.floating[Any]]


@dataclass(slots=True)
class _SmallRow:
    """One row of a small input: ``x - max``, its softmax and log-sum-exp, its target."""

    shifted: list[float]
    probabilities: list[float]
    lse: float
    target_weight: float  # w[t], or 0 where the target is ignored
    target: int  # 0 where ignored, so that indexing stays valid
    keep: bool
    prediction: int


def small_logits(
    scores: NDArray[Any],
    target: NDArray[Any],
    weight: NDArray[Any] | None,
    ignore_index: int | None,
    reduction: Reduction,
    label_smoothing: float,
    outputs: Collection[str],
    dtype: ComputeDtype,
) -> CrossEntropyResult | None:
    """``cross_entropy`` for logits and index targets, or ``None`` where the general path must answer.

    ``math.fsum`` raises OverflowError on huge losses; the caller answers those by the general path.
    """
    given = _read(scores, target, weight, label_smoothing, dtype)
    if given is None:
        return None
    ignored = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    rows = _rows(given, ignored)
    if rows is None:
        return None
    classes = len(given.batch[0])
    class_weight_total = math.fsum(given.weights) if given.weights is not None else float(classes)
    losses = _losses(rows, given, class_weight_total)
    denominator = math.fsum(r.target_weight for r in rows)
    divisor = reduction_divisor(reduction, denominator, 1.0)
    loss_value: float | None = None
    if divisor is not None and reduction != "none":
        loss_value = math.fsum(losses) / divisor if reduction == "mean" else math.fsum(losses)
    if not all(map(given.fits, losses)) or (loss_value is not None and not given.fits(loss_value)):
        return None  # the general path says what overflowed
    wanted = frozenset(outputs)
    grad_rows = _gradient(rows, given, class_weight_total, divisor) if "grad" in wanted else None
    if "grad" in wanted and grad_rows is None:
        return None
    return _result(given, rows, losses, grad_rows, wanted, loss_value)


def _result(
    given: _SmallInput,
    rows: list[_SmallRow],
    losses: list[float],
    grad_rows: list[list[float]] | None,
    wanted: frozenset[str],
    loss: float | None,
) -> CrossEntropyResult:
    """The result, with the outputs asked for (one line per name of ``CROSS_ENTROPY_OUTPUTS``)."""
    return CrossEntropyResult(
        loss=None if loss is None else given.float_type(loss),
        count=sum(r.keep for r in rows),
        losses=_shaped(given, losses) if "losses" in wanted else None,
        softmax=_shaped(given, [r.probabilities for r in rows]) if "softmax" in wanted else None,
        log_softmax=(
            _shaped(given, [[value - r.lse for value in r.shifted] for r in rows])
            if "log_softmax" in wanted
            else None
        ),
        grad=None if grad_rows is None else _shaped(given, grad_rows),
        predictions=(
            _shaped(given, [r.prediction for r in rows], np.int64) if "predictions" in wanted else None
        ),
        target_probability=(
            _shaped(given, [r.probabilities[r.target] if r.keep else math.nan for r in rows])
            if "target_probability" in wanted
            else None
        ),
    )


def _read(
    scores: NDArray[Any],
    target: NDArray[Any],
    weight: NDArray[Any] | None,
    label_smoothing: float,
    dtype: ComputeDtype,
) -> _SmallInput | None:
    """The input as lists, or ``None`` if its shapes, types or weights are not the small path's."""
    if scores.ndim not in (1, 2) or scores.size == 0 or target.ndim != scores.ndim - 1:
        return None
    if target.dtype.kind not in "iu" or target.shape != scores.shape[:-1]:
        return None
    narrow = dtype == "float32"
    if narrow:
        with np.errstate(over="ignore", invalid="ignore"):
            scores = scores.astype(np.float32)
    batch = scores.tolist() if scores.ndim == 2 else [scores.tolist()]
    weights: list[float] | None = None
    if weight is not None:
        weights = _weights(weight, scores.shape[-1], narrow=narrow)
        if weights is None:
            return None
    return _SmallInput(
        scores.shape,
        batch,
        target.tolist() if target.ndim == 1 else [target.item()],
        weights,
        float(np.float32(label_smoothing)) if narrow else float(label_smoothing),
        _FLOAT32_SMALL_LOGIT_BOUND if narrow else math.inf,
        _fits_float32 if narrow else math.isfinite,
        np.float32 if narrow else np.float64,
    )


def _weights(weight: NDArray[Any], classes: int, *, narrow: bool) -> list[float] | None:
    """The class weights, or ``None`` if the general path is to judge them."""
    if weight.ndim != 1 or weight.shape[0] != classes:
        return None
    # Decided on the weights as sent, as the general path does: -1e-50 is refused, though float32
    # rounds it to -0.0.
    bound = _FLOAT32_SMALL_WEIGHT_BOUND if narrow else math.inf
    weights = [float(value) for value in weight.tolist()]
    if not all(math.isfinite(value) and 0 <= value <= bound for value in weights):
        return None
    if not narrow:
        return weights
    rounded: list[float] = weight.astype(np.float32).tolist()
    # float32 arithmetic loses a subnormal weight's precision (w * loss / w need not be the loss);
    # double would not, so the general path answers, as PyTorch's float32 would.
    if not all(value == 0 or value >= _FLOAT32_SMALLEST_NORMAL for value in rounded):
        return None
    return rounded


def _rows(given: _SmallInput, ignored: int) -> list[_SmallRow] | None:
    """Each row's softmax pass, or ``None`` if a logit or a target is not the small path's."""
    classes = len(given.batch[0])
    bound, weights = given.logit_bound, given.weights
    rows: list[_SmallRow] = []
    for row, t in zip(given.batch, given.targets, strict=True):
        highest, lowest = max(row), min(row)
        if not (-bound <= lowest and highest <= bound and given.fits(highest - lowest)):
            return None  # NaN fails the comparisons too
        keep = t != ignored
        if keep and not 0 <= t < classes:
            return None
        shifted = [float(value) - highest for value in row]
        exps = [math.exp(value) for value in shifted]  # every exponent <= 0
        total = math.fsum(exps)
        target_weight = (weights[t] if weights is not None else 1.0) if keep else 0.0
        probabilities = [value / total for value in exps]
        # Positional: a dataclass's keyword arguments cost a microsecond per request here.
        rows.append(
            _SmallRow(
                shifted,
                probabilities,
                math.log(total),
                target_weight,
                t if keep else 0,
                keep,
                row.index(highest),
            )
        )
    return rows


def _losses(rows: list[_SmallRow], given: _SmallInput, class_weight_total: float) -> list[float]:
    """``l_i = (1 - s) w[t] (lse - shifted[t]) + s / C (W lse - shifted . w)``, 0 where ignored."""
    s, weights = given.s, given.weights
    classes = len(given.batch[0])
    losses: list[float] = []
    for r in rows:
        loss = (1 - s) * r.target_weight * (r.lse - r.shifted[r.target])
        if s > 0 and r.keep:
            dot = (
                math.fsum(r.shifted) if weights is None else math.fsum(map(operator.mul, r.shifted, weights))
            )
            loss += s / classes * (class_weight_total * r.lse - dot)
        losses.append(loss if r.keep else 0.0)
    return losses


def _gradient(
    rows: list[_SmallRow], given: _SmallInput, class_weight_total: float, divisor: float | None
) -> list[list[float]] | None:
    """``softmax * sum_c a_c - a`` per row, divided by ``divisor``; zeros where the mean is undefined;
    ``None`` if a value does not fit the dtype."""
    s, weights = given.s, given.weights
    classes = len(given.batch[0])
    grad_rows = []
    for r in rows:
        a_sum = (1 - s) * r.target_weight + (s / classes * class_weight_total if r.keep else 0.0)
        gradient = [p * a_sum for p in r.probabilities]
        if s > 0 and r.keep:
            for c in range(classes):
                gradient[c] -= s / classes * (weights[c] if weights is not None else 1.0)
        gradient[r.target] -= (1 - s) * r.target_weight
        grad_rows.append([0.0] * classes if divisor is None else [value / divisor for value in gradient])
    fits = given.fits
    if not all(fits(value) for gradient in grad_rows for value in gradient):
        return None
    return grad_rows


def _shaped(given: _SmallInput, values: list[Any], array_type: Any = None) -> NDArray[Any]:
    array = np.array(values, dtype=array_type or given.float_type)
    return array.reshape(given.shape if array.ndim == 2 else given.shape[:-1])

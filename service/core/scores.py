"""Class scores prepared for any multi-class loss: checked once, then laid out class-last in 2-D.

Every multi-class loss (cross-entropy, focal loss, ...) takes scores of shape ``(C,)``, ``(N, C)`` or
``(N, C, d1..dk)`` (the class dimension is 1, or 0 for unbatched input), a target of class indices (the
scores' shape without the class dimension) or of class probabilities (the scores' shape), and optional
class weights ``(C,)``. ``prepare_class_scores`` checks all of them at once, reporting every problem it
finds, and returns a ``ClassScores`` whose arrays are ``(M, C)`` with ``M = N * d1 * .. * dk``, so that a
loss works on rows; ``restore`` puts an ``(M, C)`` result back in the input's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from service.core.checks import (
    CLASS_AXIS,
    FLOAT_DTYPES,
    cast_to_dtype,
    check_distributions,
    check_finite,
    check_in_range,
    check_weights,
    issues_at,
    raise_if,
)
from service.core.errors import MAX_REPORTED_ISSUES, InvalidInputError, Issue, format_loc
from service.core.options import ComputeDtype
from service.core.softmax import FloatArray

__all__ = [
    "DEFAULT_IGNORE_INDEX",
    "INPUT_KINDS",
    "ClassScores",
    "InputKind",
    "IntArray",
    "check_index_target",
    "check_sample_weight",
    "check_scores",
    "check_soft_target",
    "check_spread",
    "check_weight",
    "class_last",
    "prepare_class_scores",
    "restore",
    "spare_x",
]

InputKind = Literal["logits", "probabilities", "log_probabilities"]
INPUT_KINDS: Final[tuple[str, ...]] = get_args(InputKind)
DEFAULT_IGNORE_INDEX: Final = -100

IntArray = NDArray[np.integer[Any]]


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Validated input in class-last 2-D form: ``x`` is ``(M, C)``; ``batch_shape`` restores ``B``."""

    x: FloatArray
    index_target: IntArray | None  # (M,) with ignored positions replaced by 0
    keep: NDArray[np.bool_] | None  # (M,) False where the target is ignored
    soft_target: FloatArray | None  # (M, C)
    weight: FloatArray | None  # (C,)
    batch_shape: tuple[int, ...]
    input_shape: tuple[int, ...]


def prepare_class_scores(
    scores: NDArray[Any],
    target: NDArray[Any],
    input_kind: InputKind,
    weight: NDArray[Any] | None,
    ignore_index: int | None,
    dtype: ComputeDtype,
    *,
    soft_targets: bool = True,
) -> ClassScores:
    """Check scores, target and weight together (every problem reported at once) and lay them out.

    ``scores`` are logits (any finite value, each distribution's spread finite in ``dtype``),
    probabilities (in [0, 1], each distribution summing to 1) or log-probabilities, per ``input_kind``
    (which is also the field named in messages). A target with the scores' number of dimensions holds
    class probabilities, which a loss refuses with ``soft_targets=False``; otherwise class indices, of
    which those equal to ``ignore_index`` (default -100) are skipped.

    Raises:
        InvalidInputError: listing every problem found.
    """
    field = input_kind
    x, highest, lowest = check_scores(field, scores, dtype)
    class_axis = 0 if x.ndim == 1 else 1
    batch_shape = x.shape[:class_axis] + x.shape[class_axis + 1 :]
    issues = _check_values(input_kind, x, class_axis, highest, lowest)
    soft = target.ndim == x.ndim
    index_target: IntArray | None = None
    keep: NDArray[np.bool_] | None = None
    soft_target: FloatArray | None = None
    if soft and not soft_targets:
        msg = f"target must hold class indices of shape {_shape(batch_shape)}, not class probabilities"
        issues.append(Issue(("target",), msg, "not_supported"))
    elif soft:
        soft_target, target_issues = check_soft_target(
            target, field, x.shape, batch_shape, class_axis, ignore_index
        )
        issues += target_issues
    else:
        ignored = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
        index_target, keep, target_issues = check_index_target(
            target, field, x.shape, batch_shape, x.shape[class_axis], ignored
        )
        issues += target_issues
    w: FloatArray | None = None
    if weight is not None:
        w, weight_issues = check_weight(weight, x.shape[class_axis], dtype)
        issues += weight_issues
    raise_if(issues)
    return ClassScores(
        x=class_last(x, class_axis),
        index_target=None if index_target is None else index_target.reshape(-1),
        keep=None if keep is None else keep.reshape(-1),
        soft_target=(
            None if soft_target is None else class_last(soft_target.astype(x.dtype, copy=False), class_axis)
        ),
        weight=w,
        batch_shape=batch_shape,
        input_shape=x.shape,
    )


def _check_values(
    input_kind: InputKind, x: FloatArray, class_axis: int, highest: float, lowest: float
) -> list[Issue]:
    """What each kind of score must satisfy besides being finite."""
    field = input_kind
    if input_kind == "probabilities":
        issues = check_in_range(field, x, 0.0, 1.0)
        return issues or check_distributions(field, x, class_axis)
    if input_kind == "log_probabilities":
        issues = check_in_range(field, x, -np.inf, 0.0, what="is positive: a log-probability is <= 0")
        return issues or check_distributions(field, x, class_axis, exponentiate=True)
    return check_spread(field, x, class_axis, highest, lowest)


def check_scores(field: str, scores: NDArray[Any], dtype: ComputeDtype) -> tuple[FloatArray, float, float]:
    """The scores in the compute dtype, with their largest and smallest value.

    One conversion and two reductions when all is well; only when a value is not finite (in the input,
    or after narrowing to float32) are the offending positions looked for.
    """
    if scores.ndim == 0:
        raise InvalidInputError.single(
            (field,), f"{field} must be an array of shape (C,), (N, C) or (N, C, d1, ...)", "shape"
        )
    if scores.size == 0:
        raise InvalidInputError.single(
            (field,),
            f"{field} has shape {scores.shape}: every dimension needs at least one element",
            "empty",
        )
    target = FLOAT_DTYPES[dtype]
    with np.errstate(over="ignore"):
        x: FloatArray = scores.astype(target, copy=False)
    highest = float(np.maximum.reduce(x, axis=None))
    lowest = float(np.minimum.reduce(x, axis=None))
    if math.isfinite(highest) and math.isfinite(lowest):
        return x, highest, lowest
    wide: FloatArray = scores.astype(np.float64, copy=False)
    raise_if(check_finite(field, wide))
    _, issues = cast_to_dtype(field, wide, dtype)
    raise_if(issues)
    raise AssertionError("unreachable: a non-finite value is either in the input or made by the cast")


def check_spread(field: str, x: FloatArray, class_axis: int, highest: float, lowest: float) -> list[Issue]:
    """log_softmax needs ``x - max`` to be finite: the spread of a distribution must fit the dtype."""
    with np.errstate(over="ignore"):
        if math.isfinite(x.dtype.type(highest) - x.dtype.type(lowest)):
            return []  # the spread of the whole array bounds every distribution's
        spread = np.max(x, axis=class_axis) - np.min(x, axis=class_axis)
    bad = ~np.isfinite(spread)
    if not bad.any():
        return []
    issues: list[Issue] = []
    for position in np.flatnonzero(bad)[:MAX_REPORTED_ISSUES]:
        index = [int(i) for i in np.unravel_index(int(position), spread.shape)]
        index.insert(class_axis, -1)
        loc = (field, *(CLASS_AXIS if i == -1 else i for i in index))
        msg = (
            f"{format_loc(loc)}: the spread max - min of these logits overflows {x.dtype}; "
            "logits must differ by less than the largest finite float"
        )
        issues.append(Issue(loc, msg, "overflow"))
    return issues


def check_index_target(
    target: NDArray[Any],
    field: str,
    input_shape: tuple[int, ...],
    batch_shape: tuple[int, ...],
    num_classes: int,
    ignore_index: int,
) -> tuple[IntArray | None, NDArray[np.bool_] | None, list[Issue]]:
    if target.shape != batch_shape:
        return None, None, [_target_shape_issue(target, field, input_shape, batch_shape)]
    if target.dtype.kind not in "iu":
        if target.dtype.kind == "f":
            fractional = np.isfinite(target) & (target != np.trunc(target))
            if fractional.any():
                problem = "is not a class index (class indices are integers)"
                return None, None, issues_at("target", fractional, target, problem, "int_type")
        msg = "target holds numbers written as floats; class indices are JSON integers such as 3, not 3.0"
        return None, None, [Issue(("target",), msg, "int_type")]
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= num_classes))
    if bad.any():
        problem = f"is out of range for {num_classes} classes"
        if ignore_index != DEFAULT_IGNORE_INDEX or (target == DEFAULT_IGNORE_INDEX).any():
            problem += f" (and is not ignore_index = {ignore_index})"
        return None, None, issues_at("target", bad, target, problem, "out_of_range")
    safe = np.where(keep, target, 0).astype(np.intp, copy=False)
    return safe, keep, []


def _target_shape_issue(
    target: NDArray[Any], field: str, input_shape: tuple[int, ...], batch_shape: tuple[int, ...]
) -> Issue:
    msg = (
        f"target has shape {_shape(target.shape)} but {field} of shape {_shape(input_shape)} "
        f"needs class indices of shape {_shape(batch_shape)} "
        f"or class probabilities of shape {_shape(input_shape)}"
    )
    return Issue(("target",), msg, "shape")


def check_soft_target(
    target: NDArray[Any],
    field: str,
    input_shape: tuple[int, ...],
    batch_shape: tuple[int, ...],
    class_axis: int,
    ignore_index: int | None,
) -> tuple[FloatArray | None, list[Issue]]:
    issues: list[Issue] = []
    if ignore_index is not None:
        msg = "ignore_index applies to class-index targets only; do not send it with class probabilities"
        issues.append(Issue(("ignore_index",), msg, "not_supported"))
    if target.shape != input_shape:
        return None, [*issues, _target_shape_issue(target, field, input_shape, batch_shape)]
    if target.dtype.kind not in "iuf":
        msg = f"target must hold numbers, not {target.dtype}"
        return None, [*issues, Issue(("target",), msg, "type")]
    y = target.astype(np.float64, copy=False)
    value_issues = check_finite("target", y)
    if not value_issues:
        value_issues = check_in_range("target", y, 0.0, 1.0)
    if not value_issues:
        value_issues = check_distributions("target", y, class_axis)
    return y, issues + value_issues


def check_weight(
    weight: NDArray[Any], num_classes: int, dtype: ComputeDtype, field: str = "weight"
) -> tuple[FloatArray | None, list[Issue]]:
    """Class weights: ``(C,)``, finite, non-negative, in the compute dtype."""
    if weight.ndim != 1 or weight.shape[0] != num_classes:
        msg = f"{field} has shape {_shape(weight.shape)}; it needs one weight per class: ({num_classes},)"
        return None, [Issue((field,), msg, "shape")]
    return check_weights(field, weight, dtype, "class weights are >= 0")


def check_sample_weight(
    sample_weight: NDArray[Any], batch_shape: tuple[int, ...], dtype: ComputeDtype
) -> tuple[FloatArray | None, list[Issue]]:
    """Sample weights: one per sample, the input's shape without the class dimension (``batch_shape``;
    the index target's shape), finite, non-negative, in the compute dtype; returned flat, ``(M,)``."""
    field = "sample_weight"
    if sample_weight.shape != batch_shape:
        msg = (
            f"{field} has shape {_shape(sample_weight.shape)}; it needs one weight per sample, the input's "
            f"shape without the class dimension: {_shape(batch_shape)}"
        )
        return None, [Issue((field,), msg, "shape")]
    v, issues = check_weights(field, sample_weight, dtype, "sample weights are >= 0")
    return v.reshape(-1), issues


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def class_last(x: NDArray[Any], class_axis: int) -> NDArray[Any]:
    """``(N, C, d1..dk)`` -> ``(N*d1*..*dk, C)``; ``(C,)`` -> ``(1, C)``; ``(N, C)`` unchanged."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return np.moveaxis(x, class_axis, -1).reshape(-1, x.shape[class_axis])


def spare_x(problem: ClassScores, scores: NDArray[Any], given_up: bool) -> FloatArray | None:
    """``problem.x`` when a loss may write an output over it once it has read it, else None.

    That is when ``x`` is writable and C-contiguous, and either a copy made by
    ``prepare_class_scores`` (a cast to the compute dtype, or the class-last layout of K-dimensional
    scores) or the caller's ``scores`` themselves, ``given_up`` (a /v2 request's logits, read in place
    from its body). Writing the softmax over the logits spares a batch-sized array; each value is
    computed exactly as into a fresh array, so the results do not change by a bit.
    """
    x = problem.x
    if not (x.flags.writeable and x.flags.c_contiguous):
        return None
    return x if given_up or not np.may_share_memory(x, scores) else None


def restore(x2d: NDArray[Any], input_shape: tuple[int, ...]) -> NDArray[Any]:
    """Inverse of ``class_last`` for arrays of the input's shape, C-contiguous."""
    if len(input_shape) <= 2:
        return x2d.reshape(input_shape)
    moved = x2d.reshape(input_shape[:1] + input_shape[2:] + input_shape[1:2])
    return np.ascontiguousarray(np.moveaxis(moved, -1, 1))

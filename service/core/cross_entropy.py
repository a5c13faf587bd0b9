"""Multi-class cross-entropy exactly as PyTorch computes it (``nn.CrossEntropyLoss`` / ``nn.NLLLoss``).

Notation (PyTorch's): the class dimension is 1 for batched input ``(N, C, d1, ..., dk)`` and 0 for an
unbatched ``(C,)``; ``lp = log_softmax(input)`` along it; ``w`` the class weights (ones when absent);
``s`` the label smoothing; ``m_i = [t_i != ignore_index]``. Per element ``i`` (a sample, or a sample and
a position for K-dimensional input):

* index targets:  ``l_i = m_i * ((1 - s) * w[t_i] * -lp[i, t_i] + s / C * sum_c w_c * -lp[i, c])``;
  ``"mean"`` divides ``sum_i l_i`` by ``sum_i m_i * w[t_i]`` (the weights of the targets, not N).
* soft targets y: ``l_i = -sum_c w_c * ((1 - s) * y[i, c] + s / C) * lp[i, c]``; ``"mean"`` divides by
  the number of elements.

Both are ``l_i = -sum_c a[i, c] * lp[i, c]`` for a coefficient array ``a``, so the gradient with respect
to logits is ``dl_i/dx[i, j] = softmax[i, j] * sum_c a[i, c] - a[i, j]``; with respect to probabilities
``-a[i, j] / p[i, j]`` (0 where the clip is active); with respect to log-probabilities ``-a[i, j]``.

Where PyTorch gives NaN ("mean" when every target is ignored or the targets' weights sum to 0) the
result has ``loss=None`` and a zero gradient.

Inputs may be given as logits, as probabilities (``lp = log(clip(p, epsilon, 1))``, no renormalisation:
the seed's Fashion-MNIST row sums to 0.9999 and gives ``-log(0.0875) = 2.4361``) or as log-probabilities.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.checks import (
    CLASS_AXIS,
    cast_to_dtype,
    check_distributions,
    check_finite,
    check_in_range,
    check_representable,
    issues_at,
    raise_if,
)
from service.core.errors import MAX_REPORTED_ISSUES, InvalidInputError, Issue, format_loc
from service.core.options import DEFAULT_EPSILON, ComputeDtype, Reduction, check_choice, check_options
from service.core.softmax import FloatArray

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_IGNORE_INDEX",
    "DEFAULT_OUTPUTS",
    "ComputeDtype",
    "CrossEntropyOutput",
    "CrossEntropyResult",
    "InputKind",
    "Reduction",
    "cross_entropy",
]

InputKind = Literal["logits", "probabilities", "log_probabilities"]
CrossEntropyOutput = Literal["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"]

DEFAULT_IGNORE_INDEX: Final = -100
DEFAULT_OUTPUTS: Final[tuple[CrossEntropyOutput, ...]] = ("losses", "softmax")

IntArray = NDArray[np.integer[Any]]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class CrossEntropyResult:
    """What one cross-entropy call produced; arrays not asked for are ``None``.

    Shapes, for input ``(N, C, d1..dk)`` (``B = (N, d1..dk)``, or ``()`` for unbatched input ``(C,)``):
    ``losses``, ``predictions`` and ``target_probability`` have shape ``B``; ``softmax``,
    ``log_softmax`` and ``grad`` the input's shape. ``target_probability`` holds NaN where the target is
    ignored. ``loss`` is ``None`` for ``reduction="none"`` and where PyTorch gives NaN.
    """

    loss: np.floating[Any] | None
    count: int
    losses: FloatArray | None = None
    softmax: FloatArray | None = None
    log_softmax: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: IntArray | None = None
    target_probability: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class _Problem:
    """Validated input in class-last 2-D form: ``x`` is ``(M, C)``; ``batch_shape`` restores ``B``."""

    x: FloatArray
    index_target: IntArray | None  # (M,) with ignored positions replaced by 0
    keep: NDArray[np.bool_] | None  # (M,) False where the target is ignored
    soft_target: FloatArray | None  # (M, C)
    weight: FloatArray | None  # (C,)
    batch_shape: tuple[int, ...]
    input_shape: tuple[int, ...]


def cross_entropy(
    scores: NDArray[Any],
    target: NDArray[Any],
    *,
    input_kind: InputKind = "logits",
    weight: NDArray[Any] | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    epsilon: float = DEFAULT_EPSILON,
    dtype: ComputeDtype = "float64",
    outputs: Collection[CrossEntropyOutput] = DEFAULT_OUTPUTS,
) -> CrossEntropyResult:
    """Cross-entropy of ``scores`` against ``target``, as ``F.cross_entropy`` / ``F.nll_loss``.

    Args:
        scores: float array ``(C,)``, ``(N, C)`` or ``(N, C, d1..dk)``: logits, probabilities or
            log-probabilities according to ``input_kind``.
        target: integer class indices of shape ``(N, d1..dk)`` (``()`` for unbatched input), or class
            probabilities of the same shape as ``scores`` (soft targets).
        weight: ``(C,)`` non-negative class weights.
        ignore_index: index targets equal to it are skipped (default -100); ``None`` means "not given",
            which soft targets require, as PyTorch.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: ``s`` in [0, 1].
        epsilon: clip for probability inputs, in (0, 0.5).
        dtype: ``"float64"`` or ``"float32"``, the precision of the whole computation.
        outputs: which arrays to return; the others are not computed.

    Raises:
        InvalidInputError: listing every problem found; nothing is computed then.

    Example:
        >>> import numpy as np
        >>> r = cross_entropy(np.array([[-1, 0.5, 2], [-1, 0.5, 3]]), np.array([1, 2]))
        >>> round(float(r.loss), 4), np.round(r.losses, 4).tolist()
        (0.9185, [1.7413, 0.0957])
    """
    _check_options(input_kind, ignore_index, reduction, label_smoothing, epsilon, dtype, outputs)
    problem = _prepare(scores, target, input_kind, weight, ignore_index, epsilon, dtype)
    # Overflow is possible only in results that are genuinely out of range (a sum of huge losses);
    # check_representable turns those into a clear error instead of a warning and an Infinity.
    with np.errstate(over="ignore"):
        result = _compute(problem, input_kind, reduction, label_smoothing, epsilon, frozenset(outputs))
    finite_outputs = {
        "loss": result.loss,
        "losses": result.losses,
        "softmax": result.softmax,
        "log_softmax": result.log_softmax,
        "grad": result.grad,
    }
    raise_if(check_representable(input_kind, dtype, finite_outputs))
    return result


# --- validation -------------------------------------------------------------------------------


def _check_options(
    input_kind: str,
    ignore_index: int | None,
    reduction: str,
    label_smoothing: float,
    epsilon: float,
    dtype: str,
    outputs: Collection[str],
) -> None:
    issues = check_choice("input_kind", input_kind, InputKind)
    issues += check_options(
        reduction=reduction,
        label_smoothing=label_smoothing,
        epsilon=epsilon,
        dtype=dtype,
        outputs=outputs,
        known_outputs=CrossEntropyOutput,
    )
    if ignore_index is not None and not _INT64_MIN <= ignore_index <= _INT64_MAX:
        msg = f"ignore_index = {ignore_index} is outside the 64-bit integer range"
        issues.append(Issue(("ignore_index",), msg, "out_of_range"))
    raise_if(issues)


def _prepare(
    scores: NDArray[Any],
    target: NDArray[Any],
    input_kind: InputKind,
    weight: NDArray[Any] | None,
    ignore_index: int | None,
    epsilon: float,
    dtype: ComputeDtype,
) -> _Problem:
    field = input_kind
    x = _check_scores(field, scores, dtype)
    class_axis = 0 if x.ndim == 1 else 1
    num_classes = x.shape[class_axis]
    batch_shape = x.shape[:class_axis] + x.shape[class_axis + 1 :]

    issues: list[Issue] = []
    if input_kind == "probabilities":
        issues += check_in_range(field, x, 0.0, 1.0)
        if not issues:
            issues += check_distributions(field, x, class_axis)
    elif input_kind == "log_probabilities":
        issues += check_in_range(field, x, -np.inf, 0.0, what="is positive: a log-probability is <= 0")
        if not issues:
            issues += check_distributions(field, x, class_axis, exponentiate=True)
    else:
        issues += _check_spread(field, x, class_axis)

    soft = target.ndim == x.ndim
    index_target: IntArray | None = None
    keep: NDArray[np.bool_] | None = None
    soft_target: FloatArray | None = None
    if soft:
        soft_target, target_issues = _check_soft_target(
            target, field, x.shape, batch_shape, class_axis, ignore_index
        )
        issues += target_issues
    else:
        index_target, keep, target_issues = _check_index_target(
            target,
            field,
            x.shape,
            batch_shape,
            num_classes,
            DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index,
        )
        issues += target_issues

    w: FloatArray | None = None
    if weight is not None:
        w, weight_issues = _check_weight(weight, num_classes, dtype)
        issues += weight_issues
    raise_if(issues)

    return _Problem(
        x=_class_last(x, class_axis),
        index_target=None if index_target is None else index_target.reshape(-1),
        keep=None if keep is None else keep.reshape(-1),
        soft_target=(
            None if soft_target is None else _class_last(soft_target.astype(x.dtype, copy=False), class_axis)
        ),
        weight=w,
        batch_shape=batch_shape,
        input_shape=x.shape,
    )


def _check_scores(field: str, scores: NDArray[Any], dtype: ComputeDtype) -> FloatArray:
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
    wide: FloatArray = scores.astype(np.float64, copy=False)
    raise_if(check_finite(field, wide))
    x, issues = cast_to_dtype(field, wide, dtype)
    raise_if(issues)
    return x


def _check_spread(field: str, x: FloatArray, class_axis: int) -> list[Issue]:
    """log_softmax needs ``x - max`` to be finite: the spread of a distribution must fit the dtype."""
    with np.errstate(over="ignore"):
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


def _check_index_target(
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


def _check_soft_target(
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


def _check_weight(
    weight: NDArray[Any], num_classes: int, dtype: ComputeDtype
) -> tuple[FloatArray | None, list[Issue]]:
    if weight.ndim != 1 or weight.shape[0] != num_classes:
        msg = f"weight has shape {_shape(weight.shape)}; it needs one weight per class: ({num_classes},)"
        return None, [Issue(("weight",), msg, "shape")]
    w: FloatArray = weight.astype(np.float64, copy=False)
    issues = check_finite("weight", w)
    if not issues:
        issues = check_in_range("weight", w, 0.0, np.inf, what="is negative: class weights are >= 0")
    if not issues:
        w, issues = cast_to_dtype("weight", w, dtype)
    return w, issues


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _class_last(x: NDArray[Any], class_axis: int) -> NDArray[Any]:
    """``(N, C, d1..dk)`` -> ``(N*d1*..*dk, C)``; ``(C,)`` -> ``(1, C)``; ``(N, C)`` unchanged."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return np.moveaxis(x, class_axis, -1).reshape(-1, x.shape[class_axis])


def _restore(x2d: NDArray[Any], input_shape: tuple[int, ...]) -> NDArray[Any]:
    """Inverse of ``_class_last`` for arrays of the input's shape, C-contiguous."""
    if len(input_shape) <= 2:
        return x2d.reshape(input_shape)
    moved = x2d.reshape(input_shape[:1] + input_shape[2:] + input_shape[1:2])
    return np.ascontiguousarray(np.moveaxis(moved, -1, 1))


# --- computation ------------------------------------------------------------------------------


def _compute(
    problem: _Problem,
    input_kind: InputKind,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    outputs: frozenset[str],
) -> CrossEntropyResult:
    x = problem.x
    rows, num_classes = x.shape
    dtype = x.dtype.type
    s = dtype(label_smoothing)
    want_grad = "grad" in outputs

    # The class distribution q the loss uses and its log, in (M, C).
    if input_kind == "logits":
        shifted = x - np.max(x, axis=1, keepdims=True)  # every exponent <= 0: no overflow
        q = np.exp(shifted)
        total = np.sum(q, axis=1, keepdims=True)
        q /= total
        shifted -= np.log(total)
        log_q = shifted
    elif input_kind == "probabilities":
        q = x
        log_q = np.log(np.clip(x, dtype(epsilon), dtype(1.0)))
    else:
        log_q = x
        q = np.exp(x)

    # a[i, c]: the factor of -log_q[i, c] in l_i (see the module docstring).
    weight = problem.weight
    if problem.soft_target is not None:
        a = problem.soft_target * (1 - s) + s / num_classes
        if weight is not None:
            a *= weight
        losses = -np.einsum("ij,ij->i", a, log_q)
        denominator = dtype(rows)
        count = rows
        keep = None
        a_sum = np.sum(a, axis=1)
    else:
        assert problem.index_target is not None and problem.keep is not None
        target, keep = problem.index_target, problem.keep
        picked = log_q[np.arange(rows), target]
        target_weight = weight[target] if weight is not None else np.ones(rows, dtype=dtype)
        target_weight = np.where(keep, target_weight, dtype(0))
        losses = -(1 - s) * target_weight * picked
        if s > 0:
            smooth = log_q @ weight if weight is not None else np.sum(log_q, axis=1)
            losses -= np.where(keep, s / num_classes * smooth, dtype(0))
        losses = np.where(keep, losses, dtype(0))
        denominator = np.sum(target_weight)
        count = int(np.count_nonzero(keep))
        a = None
        class_weight_total = np.sum(weight) if weight is not None else dtype(num_classes)
        a_sum = np.where(keep, (1 - s) * target_weight + s / num_classes * class_weight_total, 0)

    undefined = reduction == "mean" and not denominator > 0
    loss: np.floating[Any] | None
    if reduction == "none" or undefined:
        loss = None
    elif reduction == "sum":
        loss = np.sum(losses)
    else:
        loss = np.sum(losses) / denominator

    grad = None
    if want_grad:
        if undefined:
            grad = np.zeros_like(x)
        else:
            if a is None:
                a = _index_coefficients(problem, s, num_classes, dtype)
            grad = _gradient(input_kind, a, a_sum, q, x, dtype(epsilon))
            if reduction == "mean":
                grad /= denominator

    return _package(problem, outputs, loss, count, losses, q, log_q, grad, keep, input_kind)


def _index_coefficients(
    problem: _Problem, s: np.floating[Any], num_classes: int, dtype: type[np.floating[Any]]
) -> FloatArray:
    """Dense ``a[i, c]`` for index targets: smoothing spread over classes plus the target's share."""
    assert problem.index_target is not None and problem.keep is not None
    rows = problem.x.shape[0]
    keep = problem.keep
    weight = problem.weight if problem.weight is not None else np.ones(num_classes, dtype=dtype)
    a = np.zeros((rows, num_classes), dtype=dtype)
    if s > 0:
        a += (s / num_classes) * weight
        a *= keep[:, None]
    target = problem.index_target
    a[np.arange(rows), target] += np.where(keep, (1 - s) * weight[target], 0).astype(dtype)
    return a


def _gradient(
    input_kind: InputKind,
    a: FloatArray,
    a_sum: FloatArray,
    q: FloatArray,
    x: FloatArray,
    epsilon: np.floating[Any],
) -> FloatArray:
    """d(sum_i l_i)/d input, with ``l_i = -sum_c a[i, c] * log_q[i, c]``."""
    if input_kind == "logits":
        grad = q * a_sum[:, None]
        grad -= a
        return grad
    if input_kind == "probabilities":
        # d/dp of log(clip(p, eps, 1)): 1/p inside the clip, bounds included (as torch.clamp), else 0.
        inside = x >= epsilon
        return np.where(inside, -a / np.where(inside, x, 1), 0).astype(x.dtype, copy=False)
    return -a


def _package(
    problem: _Problem,
    outputs: frozenset[str],
    loss: np.floating[Any] | None,
    count: int,
    losses: FloatArray,
    q: FloatArray,
    log_q: FloatArray,
    grad: FloatArray | None,
    keep: NDArray[np.bool_] | None,
    input_kind: InputKind,
) -> CrossEntropyResult:
    batch_shape, input_shape = problem.batch_shape, problem.input_shape

    def full(values: FloatArray) -> FloatArray:
        return _restore(values, input_shape)

    target_probability = None
    if "target_probability" in outputs and problem.index_target is not None and keep is not None:
        rows = np.arange(q.shape[0])
        picked = q[rows, problem.index_target]
        target_probability = np.where(keep, picked, np.nan).reshape(batch_shape)

    return CrossEntropyResult(
        loss=loss,
        count=count,
        losses=losses.reshape(batch_shape) if "losses" in outputs else None,
        softmax=full(q) if "softmax" in outputs else None,
        log_softmax=full(log_q) if "log_softmax" in outputs else None,
        grad=full(grad) if grad is not None else None,
        predictions=(np.argmax(problem.x, axis=1).reshape(batch_shape) if "predictions" in outputs else None),
        target_probability=target_probability,
    )

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

import math
import operator
from collections.abc import Callable, Collection
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
    check_representable,
    issues_at,
    raise_if,
)
from service.core.errors import MAX_REPORTED_ISSUES, InvalidInputError, Issue, format_loc
from service.core.kernels import RowBlock, for_each_row_block
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
_INPUT_KINDS: Final[tuple[str, ...]] = get_args(InputKind)
_OUTPUTS: Final[tuple[str, ...]] = get_args(CrossEntropyOutput)

IntArray = NDArray[np.integer[Any]]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: Inputs up to this many numbers take ``_small_logits``: NumPy's cost per call (about a microsecond,
#: some forty calls per request) outweighs the arithmetic there; plain Python floats do it faster.
SMALL_INPUT_LIMIT: Final = 64


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs microseconds per request
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
    if input_kind == "logits" and scores.size <= SMALL_INPUT_LIMIT:
        try:
            small = _small_logits(
                scores, target, weight, ignore_index, reduction, label_smoothing, outputs, dtype
            )
        except OverflowError:  # the general path reports what overflowed
            small = None
        if small is not None:
            return small
    problem = _prepare(scores, target, input_kind, weight, ignore_index, epsilon, dtype)
    # Overflow is possible only in results that are genuinely out of range (a sum of huge losses);
    # check_representable turns those into a clear error instead of a warning and an Infinity.
    with np.errstate(over="ignore"):
        result = _compute(problem, input_kind, reduction, label_smoothing, epsilon, frozenset(outputs))
    # softmax lies in [0, 1]; the losses and the gradient scale with the weights and may not fit, and
    # log_softmax is checked too, though the input's checks should keep it finite.
    finite_outputs = {
        "loss": result.loss,
        "losses": result.losses,
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
    issues = check_choice("input_kind", input_kind, _INPUT_KINDS)
    issues += check_options(
        reduction=reduction,
        label_smoothing=label_smoothing,
        epsilon=epsilon,
        dtype=dtype,
        outputs=outputs,
        known_outputs=_OUTPUTS,
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
    x, highest, lowest = _check_scores(field, scores, dtype)
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
        issues += _check_spread(field, x, class_axis, highest, lowest)

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


def _check_scores(field: str, scores: NDArray[Any], dtype: ComputeDtype) -> tuple[FloatArray, float, float]:
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


def _check_spread(field: str, x: FloatArray, class_axis: int, highest: float, lowest: float) -> list[Issue]:
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


@dataclass(frozen=True, slots=True)
class _Coefficients:
    """What the target contributes, in the notation of the module docstring.

    ``target_weight`` is ``m_i * w[t_i]`` (index targets), ``a_sum`` is ``sum_c a[i, c]``, ``soft`` the
    dense ``a`` of soft targets; ``denominator`` is what ``"mean"`` divides by.
    """

    target: IntArray | None
    keep: NDArray[np.bool_] | None
    target_weight: FloatArray | None
    class_weight: FloatArray | None
    class_weight_total: np.floating[Any]
    soft: FloatArray | None
    a_sum: FloatArray
    denominator: np.floating[Any]
    count: int


def _coefficients(problem: _Problem, s: np.floating[Any]) -> _Coefficients:
    rows, classes = problem.x.shape
    dtype = problem.x.dtype.type
    weight = problem.weight
    total = np.add.reduce(weight) if weight is not None else dtype(classes)
    if problem.soft_target is not None:
        a = problem.soft_target * (1 - s) + s / classes
        if weight is not None:
            a *= weight
        return _Coefficients(None, None, None, weight, total, a, np.add.reduce(a, axis=1), dtype(rows), rows)
    assert problem.index_target is not None and problem.keep is not None
    target, keep = problem.index_target, problem.keep
    target_weight = (weight[target] if weight is not None else np.ones(rows, dtype=dtype)) * keep
    a_sum = (1 - s) * target_weight
    if s > 0:
        a_sum += (s / classes * total) * keep
    return _Coefficients(
        target,
        keep,
        target_weight,
        weight,
        total,
        None,
        a_sum,
        np.add.reduce(target_weight),
        int(np.count_nonzero(keep)),
    )


def _compute(
    problem: _Problem,
    input_kind: InputKind,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    outputs: frozenset[str],
) -> CrossEntropyResult:
    dtype = problem.x.dtype.type
    s = dtype(label_smoothing)
    plan = _coefficients(problem, s)
    undefined = reduction == "mean" and not plan.denominator > 0
    # The gradient of the reduced loss: of the mean divides by its denominator, of "none" is of the sum.
    # Dividing by the denominator last keeps w / sum(w) finite where 1 / sum(w) alone would overflow.
    grad_divisor = plan.denominator if reduction == "mean" and not undefined else dtype(1)
    if input_kind == "logits":
        parts = _from_logits(
            problem, plan, s, outputs, grad_divisor, want_grad="grad" in outputs and not undefined
        )
    else:
        parts = _from_distribution(
            problem,
            plan,
            s,
            input_kind,
            dtype(epsilon),
            outputs,
            grad_divisor,
            want_grad="grad" in outputs and not undefined,
        )
    losses = parts.losses
    loss: np.floating[Any] | None
    if reduction == "none" or undefined:
        loss = None
    elif reduction == "sum":
        loss = np.add.reduce(losses)
    else:
        loss = np.add.reduce(losses) / plan.denominator
    grad = parts.grad
    if "grad" in outputs and undefined:
        grad = np.zeros_like(problem.x)  # PyTorch gives NaN here; the contract says zeros
    return _package(problem, outputs, loss, plan.count, parts, grad)


@dataclass(slots=True)
class _Parts:
    losses: FloatArray
    softmax: FloatArray | None = None
    log_softmax: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: IntArray | None = None
    target_probability: FloatArray | None = None


def _from_logits(
    problem: _Problem,
    plan: _Coefficients,
    s: np.floating[Any],
    outputs: frozenset[str],
    grad_divisor: np.floating[Any],
    *,
    want_grad: bool,
) -> _Parts:
    """Everything from one blocked softmax pass (``kernels.softmax_row_blocks``).

    With ``shifted = x - max`` and ``lse = log(sum(exp(shifted)))``, ``log_softmax = shifted - lse``,
    so ``-lp[i, t] = lse - shifted[i, t]`` and ``-sum_c w_c lp[i, c] = W lse - shifted . w``: the losses
    need ``lse``, the target's shifted logit and (with smoothing or soft targets) one dot product per
    row, never the whole log-softmax array.
    """
    x = problem.x
    rows, classes = x.shape
    dtype = x.dtype.type
    empty = np.empty
    lse = empty(rows, dtype)
    softmax = empty(x.shape, dtype) if "softmax" in outputs else None
    log_softmax = empty(x.shape, dtype) if "log_softmax" in outputs else None
    grad = empty(x.shape, dtype) if want_grad else None
    predictions = empty(rows, np.intp) if "predictions" in outputs else None
    target, soft = plan.target, plan.soft
    picked = empty(rows, dtype) if target is not None else None
    smoothing = target is not None and s > 0
    dots = empty(rows, dtype) if smoothing or soft is not None else None
    smooth_weight = plan.class_weight if plan.class_weight is not None else np.ones(classes, dtype)
    if grad is not None and target is not None:
        assert plan.target_weight is not None and plan.keep is not None
        target_share = (1 - s) * plan.target_weight
        smoothing_share = (s / classes) * smooth_weight if smoothing else None

    def consume(block: RowBlock) -> None:
        span = block.rows
        n = span.stop - span.start
        block_lse = np.log(block.total, out=lse[span])
        if target is not None:
            assert picked is not None
            picked[span] = block.shifted[np.arange(n), target[span]]
        if dots is not None:
            dots[span] = (
                block.shifted @ smooth_weight
                if soft is None
                else np.einsum("ij,ij->i", soft[span], block.shifted)
            )
        if predictions is not None:
            predictions[span] = block.argmax  # type: ignore[assignment]
        probabilities = None
        if softmax is not None:
            probabilities = np.divide(block.exp, block.total[:, None], out=softmax[span])
        if log_softmax is not None:
            np.subtract(block.shifted, block_lse[:, None], out=log_softmax[span])
        if grad is not None:
            g = grad[span]
            if probabilities is not None:
                np.multiply(probabilities, plan.a_sum[span, None], out=g)
            else:
                np.divide(block.exp, block.total[:, None], out=g)
                g *= plan.a_sum[span, None]
            if soft is not None:
                g -= soft[span]
            else:
                assert target is not None and plan.keep is not None
                if smoothing_share is not None:
                    g -= smoothing_share * plan.keep[span, None]
                g[np.arange(n), target[span]] -= target_share[span]
            if grad_divisor != 1:
                g /= grad_divisor

    for_each_row_block(x, consume, want_argmax=predictions is not None)

    if soft is not None:
        assert dots is not None
        losses = plan.a_sum * lse - dots
        target_probability = None
    else:
        assert picked is not None and plan.target_weight is not None and plan.keep is not None
        losses = (1 - s) * plan.target_weight * (lse - picked)
        if smoothing:
            assert dots is not None
            # np.where, not a product with keep: an ignored row's term may overflow (inf * 0 is NaN).
            losses += (s / classes) * np.where(plan.keep, plan.class_weight_total * lse - dots, 0)
        target_probability = None
        if "target_probability" in outputs:
            target_probability = np.where(plan.keep, np.exp(picked - lse), np.nan)
    return _Parts(losses, softmax, log_softmax, grad, predictions, target_probability)


def _from_distribution(
    problem: _Problem,
    plan: _Coefficients,
    s: np.floating[Any],
    input_kind: InputKind,
    epsilon: np.floating[Any],
    outputs: frozenset[str],
    grad_divisor: np.floating[Any],
    *,
    want_grad: bool,
) -> _Parts:
    """Probabilities (``lp = log(clip(p, epsilon, 1))``) or log-probabilities (``lp`` as given)."""
    x = problem.x
    rows, classes = x.shape
    dtype = x.dtype.type
    if input_kind == "probabilities":
        q = x
        log_q = np.log(np.clip(x, epsilon, dtype(1)))
    else:
        log_q = x
        q = np.exp(x)
    if plan.soft is not None:
        losses = -np.einsum("ij,ij->i", plan.soft, log_q)
        a = plan.soft
    else:
        assert plan.target is not None and plan.keep is not None and plan.target_weight is not None
        picked = log_q[np.arange(rows), plan.target]
        losses = -(1 - s) * plan.target_weight * picked
        if s > 0:
            weight = plan.class_weight
            smooth = log_q @ weight if weight is not None else np.add.reduce(log_q, axis=1)
            losses -= (s / classes) * np.where(plan.keep, smooth, 0)  # an ignored row's may overflow
        losses = np.where(plan.keep, losses, dtype(0))
        a = np.zeros(x.shape, dtype)
        if s > 0:
            a += (s / classes) * (plan.class_weight if plan.class_weight is not None else dtype(1))
            a *= plan.keep[:, None]
        a[np.arange(rows), plan.target] += (1 - s) * plan.target_weight
    grad = None
    if want_grad:
        if input_kind == "probabilities":
            # d/dp log(clip(p, eps, 1)) is 1/p inside the clip, bounds included (torch.clamp), else 0.
            inside = x >= epsilon
            grad = np.where(inside, -a / np.where(inside, x, dtype(1)), dtype(0)).astype(dtype, copy=False)
        else:
            grad = -a
        if grad_divisor != 1:
            grad /= grad_divisor
    target_probability = None
    if "target_probability" in outputs and plan.target is not None and plan.keep is not None:
        target_probability = np.where(plan.keep, q[np.arange(rows), plan.target], np.nan)
    predictions = np.argmax(x, axis=1) if "predictions" in outputs else None
    return _Parts(
        losses,
        q if "softmax" in outputs else None,
        log_q if "log_softmax" in outputs else None,
        grad,
        predictions,
        target_probability,
    )


def _package(
    problem: _Problem,
    outputs: frozenset[str],
    loss: np.floating[Any] | None,
    count: int,
    parts: _Parts,
    grad: FloatArray | None,
) -> CrossEntropyResult:
    batch_shape, input_shape = problem.batch_shape, problem.input_shape

    def full(values: FloatArray | None) -> FloatArray | None:
        return None if values is None else _restore(values, input_shape)

    def batch(values: NDArray[Any] | None) -> NDArray[Any] | None:
        return None if values is None else values.reshape(batch_shape)

    return CrossEntropyResult(
        loss=loss,
        count=count,
        losses=batch(parts.losses) if "losses" in outputs else None,
        softmax=full(parts.softmax),
        log_softmax=full(parts.log_softmax),
        grad=full(grad),
        predictions=batch(parts.predictions),
        target_probability=batch(parts.target_probability),
    )


# --- small inputs -------------------------------------------------------------------------------


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


#: float32's small path takes logits and class weights up to these magnitudes: then none of the
#: general path's float32 intermediates (a row's dot product, a batch's sum) can overflow where
#: double does not, and both paths accept the same inputs. The rest goes the general way.
_FLOAT32_SMALL_LOGIT_BOUND: Final = 1e30
_FLOAT32_SMALL_WEIGHT_BOUND: Final = 1e6
_FLOAT32_SMALLEST_NORMAL: Final = float(np.finfo(np.float32).tiny)
#: Doubles from this magnitude on round to float32 infinity (2**128 less half an ulp).
_FLOAT32_OVERFLOW: Final = 3.4028235677973366e38


def _small_logits(
    scores: NDArray[Any],
    target: NDArray[Any],
    weight: NDArray[Any] | None,
    ignore_index: int | None,
    reduction: Reduction,
    label_smoothing: float,
    outputs: Collection[str],
    dtype: ComputeDtype,
) -> CrossEntropyResult | None:
    """The same formulas in Python floats for a handful of logits with index targets.

    It only answers inputs the general path would accept: anything it does not handle, or any value
    that would be refused, returns ``None`` and the general path runs, with its error messages.
    (``math.fsum`` raises OverflowError on huge losses; the caller treats that as ``None`` too.)

    For float32 the inputs (logits, weights, label smoothing) are first rounded to float32 as the
    general path rounds them; the arithmetic is then done in double and each result rounded to float32
    once, which is at least as close to the exact value as float32 arithmetic gets. Logits beyond
    +-1e30 and class weights beyond 1e6 or below float32's smallest normal number (other than 0) are
    left to the general path.
    """
    if scores.ndim not in (1, 2) or scores.size == 0 or target.ndim != scores.ndim - 1:
        return None
    if target.dtype.kind not in "iu" or target.shape != scores.shape[:-1]:
        return None
    narrow = dtype == "float32"
    fits: Callable[[float], bool]  # whether a result is finite in the dtype
    if narrow:
        with np.errstate(over="ignore", invalid="ignore"):
            scores = scores.astype(np.float32)
        logit_bound, weight_bound, fits = (
            _FLOAT32_SMALL_LOGIT_BOUND,
            _FLOAT32_SMALL_WEIGHT_BOUND,
            _fits_float32,
        )
    else:
        logit_bound, weight_bound, fits = math.inf, math.inf, math.isfinite
    batch = scores.tolist() if scores.ndim == 2 else [scores.tolist()]
    targets = target.tolist() if target.ndim == 1 else [target.item()]
    classes = len(batch[0])
    weights = None
    if weight is not None:
        if weight.ndim != 1 or weight.shape[0] != classes:
            return None
        # Decided on the weights as sent, as the general path does: -1e-50 is refused, though
        # float32 rounds it to -0.0.
        weights = [float(value) for value in weight.tolist()]
        if not all(math.isfinite(value) and 0 <= value <= weight_bound for value in weights):
            return None
        if narrow:
            weights = weight.astype(np.float32).tolist()
            # float32 arithmetic loses a subnormal weight's precision (w * loss / w need not be the
            # loss); double would not, so the general path answers, as PyTorch's float32 would.
            if not all(value == 0 or value >= _FLOAT32_SMALLEST_NORMAL for value in weights):
                return None
    ignored = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    s = float(np.float32(label_smoothing)) if narrow else float(label_smoothing)
    class_weight_total = math.fsum(weights) if weights is not None else float(classes)
    wanted = frozenset(outputs)

    rows: list[_SmallRow] = []
    for row, t in zip(batch, targets, strict=True):
        highest, lowest = max(row), min(row)
        if not (-logit_bound <= lowest and highest <= logit_bound and fits(highest - lowest)):
            return None  # NaN fails the comparisons too
        keep = t != ignored
        if keep and not 0 <= t < classes:
            return None
        shifted = [float(value) - highest for value in row]
        exps = [math.exp(value) for value in shifted]  # every exponent <= 0
        total = math.fsum(exps)
        rows.append(
            _SmallRow(
                shifted=shifted,
                probabilities=[value / total for value in exps],
                lse=math.log(total),
                target_weight=(weights[t] if weights is not None else 1.0) if keep else 0.0,
                target=t if keep else 0,
                keep=keep,
                prediction=row.index(highest),
            )
        )

    losses: list[float] = []
    for r in rows:
        loss = (1 - s) * r.target_weight * (r.lse - r.shifted[r.target])
        if s > 0 and r.keep:
            dot = (
                math.fsum(r.shifted) if weights is None else math.fsum(map(operator.mul, r.shifted, weights))
            )
            loss += s / classes * (class_weight_total * r.lse - dot)
        losses.append(loss if r.keep else 0.0)
    denominator = math.fsum(r.target_weight for r in rows)
    undefined = reduction == "mean" and not denominator > 0
    float_type = np.float32 if narrow else np.float64
    loss_value: float | None = None
    if reduction == "sum":
        loss_value = math.fsum(losses)
    elif reduction == "mean" and not undefined:
        loss_value = math.fsum(losses) / denominator
    if not all(map(fits, losses)) or (loss_value is not None and not fits(loss_value)):
        return None  # the general path says what overflowed

    def shaped(values: list[Any], array_type: Any = float_type) -> NDArray[Any]:
        array = np.array(values, dtype=array_type)
        return array.reshape(scores.shape if array.ndim == 2 else scores.shape[:-1])

    grad = None
    if "grad" in wanted:
        divisor = denominator if reduction == "mean" and not undefined else 1.0
        grad_rows = []
        for r in rows:
            a_sum = (1 - s) * r.target_weight + (s / classes * class_weight_total if r.keep else 0.0)
            gradient = [p * a_sum for p in r.probabilities]
            if s > 0 and r.keep:
                for c in range(classes):
                    gradient[c] -= s / classes * (weights[c] if weights is not None else 1.0)
            gradient[r.target] -= (1 - s) * r.target_weight
            grad_rows.append([0.0] * classes if undefined else [value / divisor for value in gradient])
        if not all(fits(value) for gradient in grad_rows for value in gradient):
            return None
        grad = shaped(grad_rows)

    return CrossEntropyResult(
        loss=None if loss_value is None else float_type(loss_value),
        count=sum(r.keep for r in rows),
        losses=shaped(losses) if "losses" in wanted else None,
        softmax=shaped([r.probabilities for r in rows]) if "softmax" in wanted else None,
        log_softmax=(
            shaped([[value - r.lse for value in r.shifted] for r in rows])
            if "log_softmax" in wanted
            else None
        ),
        grad=grad,
        predictions=shaped([r.prediction for r in rows], np.int64) if "predictions" in wanted else None,
        target_probability=(
            shaped([r.probabilities[r.target] if r.keep else math.nan for r in rows])
            if "target_probability" in wanted
            else None
        ),
    )


def _fits_float32(value: float) -> bool:
    """Whether a double rounds to a finite float32."""
    return -_FLOAT32_OVERFLOW < value < _FLOAT32_OVERFLOW

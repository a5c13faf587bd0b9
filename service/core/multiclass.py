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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core import small
from service.core.checks import check_representable, raise_if
from service.core.errors import Issue
from service.core.kernels import RowBlock, for_each_row_block
from service.core.options import (
    DEFAULT_EPSILON,
    ComputeDtype,
    LossOptions,
    Reduction,
    check_choice,
    loss_options,
    reduce_losses,
    reduction_divisor,
)
from service.core.scores import (
    DEFAULT_IGNORE_INDEX,
    INPUT_KINDS,
    ClassScores,
    InputKind,
    IntArray,
    prepare_class_scores,
    restore,
)
from service.core.softmax import FloatArray
from service.core.vocabulary import (
    CROSS_ENTROPY_OUTPUTS,
    DEFAULT_OUTPUTS,
    CrossEntropyOutput,
    CrossEntropyResult,
)

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

_OUTPUTS = tuple(CROSS_ENTROPY_OUTPUTS)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


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
    options = _options(input_kind, ignore_index, reduction, label_smoothing, epsilon, dtype, outputs)
    if input_kind == "logits" and scores.size <= small.SMALL_INPUT_LIMIT:
        try:
            answer = small.small_logits(
                scores, target, weight, ignore_index, reduction, label_smoothing, outputs, dtype
            )
        except OverflowError:  # the general path reports what overflowed
            answer = None
        if answer is not None:
            return answer
    problem = prepare_class_scores(scores, target, input_kind, weight, ignore_index, dtype)
    # Overflow is possible only in results that are genuinely out of range (a sum of huge losses);
    # check_representable turns those into a clear error instead of a warning and an Infinity.
    with np.errstate(over="ignore"):
        result = _compute(problem, input_kind, options)
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


def _options(
    input_kind: str,
    ignore_index: int | None,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    dtype: ComputeDtype,
    outputs: Collection[str],
) -> LossOptions:
    later: list[Issue] = []
    if ignore_index is not None and not _INT64_MIN <= ignore_index <= _INT64_MAX:
        msg = f"ignore_index = {ignore_index} is outside the 64-bit integer range"
        later.append(Issue(("ignore_index",), msg, "out_of_range"))
    return loss_options(
        reduction=reduction,
        label_smoothing=label_smoothing,
        epsilon=epsilon,
        dtype=dtype,
        outputs=outputs,
        known_outputs=_OUTPUTS,
        before=check_choice("input_kind", input_kind, INPUT_KINDS),
        after=later,
    )


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


def _coefficients(problem: ClassScores, s: np.floating[Any]) -> _Coefficients:
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


def _compute(problem: ClassScores, input_kind: InputKind, options: LossOptions) -> CrossEntropyResult:
    dtype = problem.x.dtype.type
    s = dtype(options.label_smoothing)
    outputs = options.outputs
    plan = _coefficients(problem, s)
    # The gradient of the reduced loss: of the mean divides by its denominator, of "none" is of the sum.
    # Dividing by the denominator last keeps w / sum(w) finite where 1 / sum(w) alone would overflow.
    divisor = reduction_divisor(options.reduction, plan.denominator, dtype(1))
    grad_divisor = dtype(1) if divisor is None else divisor
    want_grad = "grad" in outputs and divisor is not None
    if input_kind == "logits":
        parts = _from_logits(problem, plan, s, outputs, grad_divisor, want_grad=want_grad)
    else:
        epsilon = dtype(options.epsilon)
        parts = _from_distribution(
            problem, plan, s, input_kind, epsilon, outputs, grad_divisor, want_grad=want_grad
        )
    loss = reduce_losses(parts.losses, options.reduction, divisor)
    grad = parts.grad
    if "grad" in outputs and divisor is None:
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
    problem: ClassScores,
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
    problem: ClassScores,
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
    problem: ClassScores,
    outputs: frozenset[str],
    loss: np.floating[Any] | None,
    count: int,
    parts: _Parts,
    grad: FloatArray | None,
) -> CrossEntropyResult:
    batch_shape, input_shape = problem.batch_shape, problem.input_shape

    def full(values: FloatArray | None) -> FloatArray | None:
        return None if values is None else restore(values, input_shape)

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

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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core import small
from service.core.checks import check_representable, raise_if
from service.core.errors import Issue
from service.core.multiclass_terms import Parts, coefficients, from_distribution, from_logits
from service.core.options import (
    DEFAULT_EPSILON,
    ComputeDtype,
    LossOptions,
    Reduction,
    check_choice,
    check_options,
    reduce_losses,
    reduction_divisor,
)
from service.core.scores import (
    DEFAULT_IGNORE_INDEX,
    INPUT_KINDS,
    ClassScores,
    InputKind,
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
        reduction: ``"mean"``, ``"sum"`` or ``"none"``; label_smoothing: ``s`` in [0, 1].
        epsilon: clip for probability inputs, in (0, 0.5); dtype: the precision of the whole computation.
        outputs: which arrays to return (``CROSS_ENTROPY_OUTPUTS``); the others are not computed.

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
        given = (scores, target, weight, ignore_index, reduction, label_smoothing, outputs, dtype)
        try:
            answer = small.small_logits(*given)
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
    """The options, checked once (positional calls: this runs on every request, small ones included)."""
    issues = check_choice("input_kind", input_kind, INPUT_KINDS)
    issues += check_options(reduction, label_smoothing, epsilon, dtype, outputs, _OUTPUTS)
    if ignore_index is not None and not _INT64_MIN <= ignore_index <= _INT64_MAX:
        msg = f"ignore_index = {ignore_index} is outside the 64-bit integer range"
        issues.append(Issue(("ignore_index",), msg, "out_of_range"))
    raise_if(issues)
    return LossOptions(reduction, label_smoothing, epsilon, dtype, outputs)


def _compute(problem: ClassScores, input_kind: InputKind, options: LossOptions) -> CrossEntropyResult:
    dtype = problem.x.dtype.type
    s = dtype(options.label_smoothing)
    outputs = frozenset(options.outputs)
    plan = coefficients(problem, s)
    # The gradient of the reduced loss: of the mean divides by its denominator, of "none" is of the sum.
    # Dividing by the denominator last keeps w / sum(w) finite where 1 / sum(w) alone would overflow.
    divisor = reduction_divisor(options.reduction, plan.denominator, dtype(1))
    grad_divisor = dtype(1) if divisor is None else divisor
    want_grad = "grad" in outputs and divisor is not None
    if input_kind == "logits":
        parts = from_logits(problem, plan, s, outputs, grad_divisor, want_grad=want_grad)
    else:
        epsilon = dtype(options.epsilon)
        parts = from_distribution(
            problem, plan, s, input_kind, epsilon, outputs, grad_divisor, want_grad=want_grad
        )
    loss = reduce_losses(parts.losses, options.reduction, divisor)
    grad = parts.grad
    if "grad" in outputs and divisor is None:
        grad = np.zeros_like(problem.x)  # PyTorch gives NaN here; the contract says zeros
    return _package(problem, outputs, loss, plan.count, parts, grad)


def _package(
    problem: ClassScores,
    outputs: frozenset[str],
    loss: np.floating[Any] | None,
    count: int,
    parts: Parts,
    grad: FloatArray | None,
) -> CrossEntropyResult:
    """The outputs asked for, each in the shape ``CROSS_ENTROPY_OUTPUTS`` gives it."""
    arrays: dict[str, NDArray[Any]] = {}
    for name, info in CROSS_ENTROPY_OUTPUTS.items():
        values = grad if name == "grad" else getattr(parts, name)
        if name not in outputs or values is None:
            continue
        batch = info.shape == "batch"
        arrays[name] = values.reshape(problem.batch_shape) if batch else restore(values, problem.input_shape)
    return CrossEntropyResult(loss, count, **arrays)

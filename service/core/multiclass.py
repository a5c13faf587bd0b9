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

Sample weights ``v_i`` (scikit-learn's ``sample_weight``, one per element) multiply each element's
loss in the reduction only: ``"sum"`` is ``sum_i v_i l_i`` and ``"mean"`` divides it by
``sum_i v_i m_i w[t_i]`` (index targets) or ``sum_i v_i`` (soft targets). With class weights that is
scikit-learn's convention (the two weights multiply, and the mean divides by the total of their
products), not Keras's, which divides by N; without class weights it is ``log_loss(sample_weight=)``.
``losses`` stay unweighted by ``v``; the gradient is that of the weighted reduction.

Inputs may be given as logits, as probabilities (``lp = log(clip(p, epsilon, 1))``, no renormalisation:
the seed's Fashion-MNIST row sums to 0.9999 and gives ``-log(0.0875) = 2.4361``) or as log-probabilities.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from service.core import metrics, small
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
    check_sample_weight,
    prepare_class_scores,
    restore,
    spare_x,
)
from service.core.softmax import FloatArray
from service.core.vocabulary import (
    CROSS_ENTROPY_METRICS,
    CROSS_ENTROPY_OUTPUTS,
    DEFAULT_CALIBRATION_BINS,
    DEFAULT_OUTPUTS,
    DEFAULT_TOP_K,
    MAX_CALIBRATION_BINS,
    CrossEntropyOutput,
    CrossEntropyRequestOutput,
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

_OUTPUTS = tuple(CROSS_ENTROPY_OUTPUTS) + tuple(CROSS_ENTROPY_METRICS)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: The results that may overflow (softmax lies in [0, 1]; the losses, the gradient and perplexity scale
#: with the weights or the losses, and a weighted mean's sums with the sample weights; log_softmax is
#: checked too, though the input's checks keep it finite).
_MAY_OVERFLOW = (
    "loss",
    "losses",
    "log_softmax",
    "grad",
    "perplexity",
    "accuracy",
    "top_k_accuracy",
    "brier_score",
)
_METRIC_NAMES = frozenset(CROSS_ENTROPY_METRICS)
#: The metrics that compare with a class index.
_INDEX_METRICS = ("accuracy", "top_k_accuracy", "brier_score", "calibration")


class MetricOptions(NamedTuple):
    """The metrics asked for and their parameters."""

    names: frozenset[str]
    top_k: int
    bins: int


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
    outputs: Collection[CrossEntropyRequestOutput] = DEFAULT_OUTPUTS,
    sample_weight: NDArray[Any] | None = None,
    top_k: int = DEFAULT_TOP_K,
    calibration_bins: int = DEFAULT_CALIBRATION_BINS,
    overwrite_scores: bool = False,
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
        outputs: which arrays (``CROSS_ENTROPY_OUTPUTS``) and metrics (``CROSS_ENTROPY_METRICS``) to
            return; the others are not computed.
        sample_weight: one non-negative weight per element, the shape of the input without the class
            dimension (module docstring); the metrics are weighted by it too.
        top_k: ``k`` of ``top_k_accuracy`` (>= 1); calibration_bins: ``B`` of ``calibration``.
        overwrite_scores: the caller gives ``scores`` up: an output may be written over it (``spare_x``).

    Raises:
        InvalidInputError: listing every problem found; nothing is computed then.

    Example:
        >>> import numpy as np
        >>> r = cross_entropy(np.array([[-1, 0.5, 2], [-1, 0.5, 3]]), np.array([1, 2]))
        >>> round(float(r.loss), 4), np.round(r.losses, 4).tolist()
        (0.9185, [1.7413, 0.0957])
    """
    wanted = MetricOptions(_METRIC_NAMES.intersection(outputs), top_k, calibration_bins)
    options = _options(input_kind, ignore_index, reduction, label_smoothing, epsilon, dtype, outputs, wanted)
    # Sample weights and metrics take the general path only.
    if sample_weight is None and not wanted.names and input_kind == "logits":
        answer = _small(scores, target, weight, ignore_index, reduction, label_smoothing, outputs, dtype)
        if answer is not None:
            return answer
    problem = prepare_class_scores(scores, target, input_kind, weight, ignore_index, dtype)
    v = _sample_weight(problem, sample_weight, wanted, dtype)
    # Overflow is possible only in results that are genuinely out of range (a sum of huge losses);
    # check_representable turns those into a clear error instead of a warning and an Infinity.
    with np.errstate(over="ignore", invalid="ignore"):  # invalid: inf / inf, weights' sums overflowing
        result = _compute(problem, input_kind, options, v, wanted, spare_x(problem, scores, overwrite_scores))
    raise_if(check_representable(input_kind, dtype, _may_overflow(result)))
    return result


def _may_overflow(result: CrossEntropyResult) -> dict[str, Any]:
    """The results ``check_representable`` checks (``_MAY_OVERFLOW``, and calibration's error)."""
    finite_outputs = {name: getattr(result, name) for name in _MAY_OVERFLOW}
    finite_outputs["calibration"] = None if result.calibration is None else result.calibration["ece"]
    return finite_outputs


def _small(*given: Any) -> CrossEntropyResult | None:
    """``small.small_logits`` for inputs of up to ``SMALL_INPUT_LIMIT`` numbers, else ``None``."""
    if given[0].size > small.SMALL_INPUT_LIMIT:
        return None
    try:
        return small.small_logits(*given)
    except OverflowError:  # the general path reports what overflowed
        return None


def _options(
    input_kind: str,
    ignore_index: int | None,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    dtype: ComputeDtype,
    outputs: Collection[str],
    wanted: MetricOptions,
) -> LossOptions:
    """The options, checked once (positional calls: this runs on every request, small ones included)."""
    issues = check_choice("input_kind", input_kind, INPUT_KINDS)
    issues += check_options(reduction, label_smoothing, epsilon, dtype, outputs, _OUTPUTS)
    issues += _metric_option_issues(wanted)
    if ignore_index is not None and not _INT64_MIN <= ignore_index <= _INT64_MAX:
        msg = f"ignore_index = {ignore_index} is outside the 64-bit integer range"
        issues.append(Issue(("ignore_index",), msg, "out_of_range"))
    raise_if(issues)
    return LossOptions(reduction, label_smoothing, epsilon, dtype, outputs)


def _metric_option_issues(wanted: MetricOptions) -> list[Issue]:
    issues: list[Issue] = []
    if wanted.top_k < 1:
        issues.append(Issue(("top_k",), f"top_k = {wanted.top_k} is not a positive integer", "out_of_range"))
    if not 1 <= wanted.bins <= MAX_CALIBRATION_BINS:
        msg = f"calibration_bins = {wanted.bins} is outside [1, {MAX_CALIBRATION_BINS}]"
        issues.append(Issue(("calibration_bins",), msg, "out_of_range"))
    return issues


def _sample_weight(
    problem: ClassScores, sample_weight: NDArray[Any] | None, wanted: MetricOptions, dtype: ComputeDtype
) -> FloatArray | None:
    """The sample weights, flat (``(M,)``), checked; and the index-only metrics refused for soft targets."""
    issues: list[Issue] = []
    if problem.soft_target is not None:
        for position, name in enumerate(sorted(wanted.names & frozenset(_INDEX_METRICS))):
            msg = f"{name} compares with a class index; it needs index targets, not class probabilities"
            issues.append(Issue(("outputs", position), msg, "not_supported"))
    v = None
    if sample_weight is not None:
        v, weight_issues = check_sample_weight(sample_weight, problem.batch_shape, dtype)
        issues += weight_issues
    raise_if(issues)
    return v


def _compute(
    problem: ClassScores,
    input_kind: InputKind,
    options: LossOptions,
    v: FloatArray | None,
    wanted: MetricOptions,
    spare: FloatArray | None = None,
) -> CrossEntropyResult:
    """The results; ``spare`` (``spare_x``) is ``problem.x`` when an output may be written over it."""
    dtype = problem.x.dtype.type
    s = dtype(options.label_smoothing)
    asked = frozenset(options.outputs)
    outputs = asked | _needed_for(wanted.names)
    plan = coefficients(problem, s)
    denominator = plan.denominator
    if v is not None:
        denominator = (
            np.add.reduce(v * plan.target_weight) if plan.target_weight is not None else np.add.reduce(v)
        )
    # The gradient of the reduced loss: of the mean divides by its denominator, of "none" is of the sum.
    # Dividing by the denominator last keeps w / sum(w) finite where 1 / sum(w) alone would overflow.
    divisor = reduction_divisor(options.reduction, denominator, dtype(1))
    grad_divisor = dtype(1) if divisor is None else divisor
    want_grad = "grad" in outputs and divisor is not None
    if input_kind == "logits":
        parts = from_logits(problem, plan, s, outputs, grad_divisor, want_grad=want_grad, spare=spare)
    else:
        epsilon = dtype(options.epsilon)
        parts = from_distribution(
            problem, plan, s, input_kind, epsilon, outputs, grad_divisor, want_grad=want_grad
        )
    weighted = parts.losses if v is None else parts.losses * v
    loss = reduce_losses(weighted, options.reduction, divisor)
    grad = parts.grad
    if grad is not None and v is not None:
        grad *= v[:, None]
    if "grad" in outputs and divisor is None:
        grad = np.zeros_like(problem.x)  # PyTorch gives NaN here; the contract says zeros
    result = _package(problem, asked, loss, plan.count, parts, grad)
    if wanted.names:
        mean_loss = reduce_losses(weighted, "mean", denominator if denominator > 0 else None)
        _add_metrics(result, problem, parts, v, wanted, mean_loss, log_p_exact=input_kind != "probabilities")
    return result


def _needed_for(names: frozenset[str]) -> frozenset[str]:
    """The arrays the metrics are computed from."""
    needed = {"softmax"} if names else set()
    if "entropy" in names:
        needed.add("log_softmax")
    return frozenset(needed)


def _add_metrics(
    result: CrossEntropyResult,
    problem: ClassScores,
    parts: Parts,
    v: FloatArray | None,
    wanted: MetricOptions,
    mean_loss: np.floating[Any] | None,
    *,
    log_p_exact: bool,
) -> None:
    """The metrics asked for (``service.core.metrics``), from the class-last distribution."""
    p = parts.softmax
    assert p is not None
    names = wanted.names
    if "perplexity" in names and mean_loss is not None:
        result.perplexity = np.exp(mean_loss)
    if "entropy" in names:
        entropy = metrics.entropy(p, parts.log_softmax if log_p_exact else None)
        result.entropy = entropy.reshape(problem.batch_shape)
    target, keep = problem.index_target, problem.keep
    if target is None or keep is None:
        return
    u = keep.astype(p.dtype) if v is None else v * keep
    if "accuracy" in names:
        result.accuracy = metrics.accuracy(p, target, u)
    if "top_k_accuracy" in names:
        result.top_k_accuracy = metrics.top_k_accuracy(p, target, u, wanted.top_k)
    if "brier_score" in names:
        result.brier_score = metrics.brier_score(p, target, u)
    if "calibration" in names:
        result.calibration = metrics.calibration(p, target, u, wanted.bins).as_dict()


def _package(
    problem: ClassScores,
    outputs: frozenset[str],
    loss: np.floating[Any] | None,
    count: int,
    parts: Parts,
    grad: FloatArray | None,
) -> CrossEntropyResult:
    """The outputs asked for, each in the shape ``CROSS_ENTROPY_OUTPUTS`` gives it."""
    arrays: dict[str, Any] = {}
    for name, info in CROSS_ENTROPY_OUTPUTS.items():
        values = grad if name == "grad" else getattr(parts, name)
        if name not in outputs or values is None:
            continue
        batch = info.shape == "batch"
        arrays[name] = values.reshape(problem.batch_shape) if batch else restore(values, problem.input_shape)
    return CrossEntropyResult(loss, count, **arrays)

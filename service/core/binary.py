"""Binary cross-entropy exactly as PyTorch computes it (``nn.BCEWithLogitsLoss`` / ``nn.BCELoss``).

Elementwise over an input of any shape (``(N,)`` binary, ``(N, L)`` multi-label, ...), with targets
``y`` in [0, 1] of the same shape, ``w`` a weight broadcast to the input and ``pw`` a positive-class
weight broadcast along the last dimension:

* logits x: ``l = w * ((1 - y) * x + (1 + (pw - 1) * y) * softplus(-x))``, where
  ``softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)`` never exponentiates a positive number, so logits of
  +-1e300 give exact losses; ``dl/dx = w * ((1 - y) - (1 + (pw - 1) * y) * sigmoid(-x))``.
* probabilities p (``nn.BCELoss``): ``p`` is first clipped to ``[epsilon, 1 - epsilon]`` (as scikit-learn
  and Keras), then ``l = -w * (y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))``, and
  ``dl/dp = w * (p - y) / max(p * (1 - p), float32(1e-12))`` inside the clip, 0 outside (PyTorch's backward).

Label smoothing is Keras's: ``y' = y * (1 - s) + 0.5 * s``. ``"mean"`` averages over every element
(weights are not in the denominator).

Sample weights ``v_n`` (one per sample: the input's first dimension) apply to each of the sample's
elements in the reduction only: ``"sum"`` is ``sum_n v_n sum_j l_nj`` and ``"mean"`` divides it by the
total weight of all elements, ``L sum_n v_n`` (scikit-learn's convention); ``losses`` stay unweighted,
the gradient is that of the weighted reduction. The metrics (``accuracy`` at ``threshold``,
``brier_score``) are weighted means over elements with the same weights.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from service.core import metrics
from service.core.checks import (
    cast_to_dtype,
    check_finite,
    check_in_range,
    check_representable,
    check_weights,
    raise_if,
)
from service.core.errors import InvalidInputError, Issue
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
from service.core.softmax import FloatArray
from service.core.vocabulary import (
    BINARY_METRICS,
    BINARY_OUTPUTS,
    DEFAULT_BINARY_OUTPUTS,
    DEFAULT_THRESHOLD,
    BinaryOutput,
    BinaryRequestOutput,
)

__all__ = [
    "DEFAULT_BINARY_OUTPUTS",
    "BinaryCrossEntropyResult",
    "BinaryInputKind",
    "BinaryOutput",
    "binary_cross_entropy",
    "log_sigmoid",
    "prepare_binary_scores",
    "sigmoid",
]

BinaryInputKind = Literal["logits", "probabilities"]
_INPUT_KINDS: Final[tuple[str, ...]] = get_args(BinaryInputKind)

#: PyTorch's BCELoss floor for log p and log(1 - p).
_LOG_FLOOR: Final = -100.0
#: Its backward's floor for p * (1 - p): the constant 1e-12 as a float32 (9.99999996e-13), in float64
#: arithmetic too, as PyTorch 2.13 computes it; exactly 1e-12 would differ by 4e-9 relative where it applies.
_GRAD_DENOMINATOR_FLOOR: Final = float(np.float32(1e-12))


@dataclass(frozen=True, slots=True)
class BinaryCrossEntropyResult:
    """Outputs of one binary cross-entropy call; arrays have the input's shape, or are ``None``."""

    loss: np.floating[Any] | None
    count: int
    losses: FloatArray | None = None
    sigmoid: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: NDArray[np.int64] | None = None
    accuracy: np.floating[Any] | None = None
    brier_score: np.floating[Any] | None = None


def sigmoid(x: FloatArray) -> FloatArray:
    """``1 / (1 + exp(-x))`` without overflow: ``exp`` only ever sees ``-|x|``."""
    e = np.exp(-np.abs(x))
    result: FloatArray = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return result


def log_sigmoid(x: FloatArray) -> FloatArray:
    """``log(sigmoid(x)) = -softplus(-x) = -(log1p(exp(-|x|)) + max(-x, 0))``, finite for any finite x."""
    result: FloatArray = -(np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    return result


def binary_cross_entropy(
    scores: NDArray[Any],
    target: NDArray[Any],
    *,
    input_kind: BinaryInputKind = "logits",
    weight: NDArray[Any] | None = None,
    pos_weight: NDArray[Any] | None = None,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    epsilon: float = DEFAULT_EPSILON,
    dtype: ComputeDtype = "float64",
    outputs: Collection[BinaryRequestOutput] = DEFAULT_BINARY_OUTPUTS,
    sample_weight: NDArray[Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> BinaryCrossEntropyResult:
    """Binary cross-entropy of ``scores`` (logits or probabilities) against ``target``.

    Args:
        scores: any shape; logits (any real) or probabilities in [0, 1] per ``input_kind``.
        target: the same shape, values in [0, 1] (soft labels allowed).
        weight: non-negative, broadcastable to the input's shape.
        pos_weight: non-negative, broadcastable along the last dimension; logits only, as PyTorch.
        reduction, label_smoothing, epsilon, dtype, outputs: as for ``cross_entropy`` (outputs also
            names the metrics, ``BINARY_METRICS``).
        sample_weight: ``(N,)`` non-negative, one per sample; threshold: ``accuracy``'s, in [0, 1].

    Raises:
        InvalidInputError: listing every problem found; nothing is computed then.

    Example:
        >>> r = binary_cross_entropy(np.array([0.0, 2.0]), np.array([1.0, 0.0]))
        >>> round(float(r.loss), 4)
        1.41
    """
    options = _options(input_kind, pos_weight, reduction, label_smoothing, epsilon, dtype, outputs)
    x, y, w, pw = prepare_binary_scores(scores, target, input_kind, weight, pos_weight, dtype)
    v_full = _sample_weight(sample_weight, x, threshold, dtype)
    wanted = options.outputs
    kind = x.dtype.type
    y_true, y = y, _smoothed(y, kind(label_smoothing))  # the metrics compare with the targets as sent
    with np.errstate(over="ignore", invalid="ignore"):  # inf / inf: weights whose sums overflow
        want_grad = "grad" in wanted
        if input_kind == "logits":
            losses, grad, probability = _from_logits(x, y, w, pw, want_grad=want_grad)
        else:
            losses, grad, probability = _from_probabilities(x, y, w, kind(epsilon), want_grad=want_grad)
        loss, grad = _reduce(losses, grad, v_full, reduction, kind(x.size))
    result = BinaryCrossEntropyResult(
        loss=loss,
        count=int(x.size),
        losses=losses if "losses" in wanted else None,
        sigmoid=probability if "sigmoid" in wanted else None,
        grad=grad,
        predictions=(probability >= 0.5).astype(np.int64) if "predictions" in wanted else None,
        accuracy=_accuracy(probability, y_true, v_full, threshold) if "accuracy" in wanted else None,
        brier_score=_brier(probability, y_true, v_full) if "brier_score" in wanted else None,
    )
    finite = {"loss": loss, "losses": result.losses, "grad": grad, "accuracy": result.accuracy}
    raise_if(check_representable(input_kind, dtype, {**finite, "brier_score": result.brier_score}))
    return result


def _smoothed(y: FloatArray, s: np.floating[Any]) -> FloatArray:
    """Keras's label smoothing, ``y (1 - s) + 0.5 s``."""
    return y * (1 - s) + s / 2 if s > 0 else y


def _reduce(
    losses: FloatArray,
    grad: FloatArray | None,
    v_full: FloatArray | None,
    reduction: Reduction,
    count: np.floating[Any],
) -> tuple[np.floating[Any] | None, FloatArray | None]:
    """The reduced loss and its gradient, weighted by the sample weights (broadcast to the input)."""
    one = count.dtype.type(1)
    denominator = count if v_full is None else np.add.reduce(v_full, axis=None)
    divisor = reduction_divisor(reduction, denominator, one)
    loss = reduce_losses(losses if v_full is None else losses * v_full, reduction, divisor)
    if grad is not None and v_full is not None:
        grad = grad * v_full
    if grad is not None and reduction == "mean":
        grad = grad / divisor if divisor is not None else np.zeros_like(grad)
    return loss, grad


def _weights_of(x: FloatArray, v_full: FloatArray | None) -> FloatArray:
    return np.ones_like(x) if v_full is None else v_full


def _accuracy(
    p: FloatArray, y: FloatArray, v_full: FloatArray | None, threshold: float
) -> np.floating[Any] | None:
    return metrics.threshold_accuracy(p, y, _weights_of(p, v_full), threshold)


def _brier(p: FloatArray, y: FloatArray, v_full: FloatArray | None) -> np.floating[Any] | None:
    return metrics.weighted_mean((p - y) ** 2, _weights_of(p, v_full))


def _from_logits(
    x: FloatArray, y: FloatArray, w: FloatArray | None, pw: FloatArray | None, *, want_grad: bool
) -> tuple[FloatArray, FloatArray | None, FloatArray]:
    positive_factor = 1 + (pw - 1) * y if pw is not None else None
    softplus_minus_x = -log_sigmoid(x)
    losses = (1 - y) * x
    losses += softplus_minus_x if positive_factor is None else positive_factor * softplus_minus_x
    if w is not None:
        losses = losses * w
    probability = sigmoid(x)
    grad = None
    if want_grad:
        # sigmoid(-x), not 1 - sigmoid(x), which loses every digit once sigmoid(x) rounds to 1.
        minus = sigmoid(-x)
        grad = (1 - y) - (minus if positive_factor is None else positive_factor * minus)
        if w is not None:
            grad = grad * w
    return np.broadcast_to(losses, x.shape).copy(), grad, probability


def _from_probabilities(
    p: FloatArray, y: FloatArray, w: FloatArray | None, epsilon: np.floating[Any], *, want_grad: bool
) -> tuple[FloatArray, FloatArray | None, FloatArray]:
    kind = p.dtype.type
    clipped = np.clip(p, epsilon, 1 - epsilon)
    log_p = np.maximum(np.log(clipped), kind(_LOG_FLOOR))
    log_not_p = np.maximum(np.log1p(-clipped), kind(_LOG_FLOOR))
    losses = -(y * log_p + (1 - y) * log_not_p)
    if w is not None:
        losses = losses * w
    grad = None
    if want_grad:
        denominator = np.maximum(clipped * (1 - clipped), kind(_GRAD_DENOMINATOR_FLOOR))
        grad = (clipped - y) / denominator
        # d clip/dp is 1 inside [eps, 1 - eps], bounds included (torch.clamp), 0 outside.
        grad = np.where((p >= epsilon) & (p <= 1 - epsilon), grad, kind(0))
        if w is not None:
            grad = grad * w
    return np.broadcast_to(losses, p.shape).copy(), grad, clipped


def _options(
    input_kind: str,
    pos_weight: NDArray[Any] | None,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    dtype: ComputeDtype,
    outputs: Collection[str],
) -> LossOptions:
    later: list[Issue] = []
    if pos_weight is not None and input_kind == "probabilities":
        msg = "pos_weight applies to logits only (as PyTorch's BCEWithLogitsLoss); send logits"
        later.append(Issue(("pos_weight",), msg, "not_supported"))
    return loss_options(
        reduction=reduction,
        label_smoothing=label_smoothing,
        epsilon=epsilon,
        dtype=dtype,
        outputs=outputs,
        known_outputs=tuple(BINARY_OUTPUTS) + tuple(BINARY_METRICS),
        before=check_choice("input_kind", input_kind, _INPUT_KINDS),
        after=later,
    )


def _sample_weight(
    sample_weight: NDArray[Any] | None, x: FloatArray, threshold: float, dtype: ComputeDtype
) -> FloatArray | None:
    """The sample weights ``(N,)`` (``()`` for a 0-d input), checked with the threshold, and broadcast
    to the input's shape: each sample's weight for each of its labels."""
    issues: list[Issue] = []
    if not 0.0 <= threshold <= 1.0:
        issues.append(Issue(("threshold",), f"threshold = {threshold!r} is outside [0, 1]", "out_of_range"))
    v: FloatArray | None = None
    if sample_weight is not None:
        field = "sample_weight"
        expected = x.shape[:1]
        if sample_weight.shape != expected:
            shape = ", ".join(map(str, sample_weight.shape))
            msg = f"{field} has shape ({shape}); it needs one weight per sample: {list(expected)}"
            issues.append(Issue((field,), msg, "shape"))
        else:
            v, found = check_weights(field, sample_weight, dtype, "sample weights are >= 0")
            issues += found
    raise_if(issues)
    if v is None:
        return None
    full: FloatArray = np.broadcast_to(v.reshape(v.shape + (1,) * (x.ndim - v.ndim)), x.shape)
    return full


def prepare_binary_scores(
    scores: NDArray[Any],
    target: NDArray[Any],
    input_kind: str,
    weight: NDArray[Any] | None,
    pos_weight: NDArray[Any] | None,
    dtype: str,
) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None]:
    """Elementwise scores (logits, or probabilities in [0, 1]), targets in [0, 1] of their shape, and
    weights broadcast to it, checked and in the compute dtype: ``(x, y, w, pw)``. Reusable by any
    elementwise loss.

    Raises:
        InvalidInputError: listing every problem found.
    """
    field = input_kind
    if scores.size == 0:
        msg = f"{field} has shape {scores.shape}: every dimension needs at least one element"
        raise InvalidInputError.single((field,), msg, "empty")
    wide = scores.astype(np.float64, copy=False)
    raise_if(check_finite(field, wide))
    if input_kind == "probabilities":
        raise_if(check_in_range(field, wide, 0.0, 1.0))
    x, issues = cast_to_dtype(field, wide, dtype)

    if target.shape != scores.shape:
        msg = f"target has shape {target.shape} but {field} has shape {scores.shape}; they must be equal"
        issues.append(Issue(("target",), msg, "shape"))
        raise_if(issues)
    y64 = target.astype(np.float64, copy=False)
    target_issues = check_finite("target", y64)
    if not target_issues:
        target_issues = check_in_range("target", y64, 0.0, 1.0)
    issues += target_issues

    w, weight_issues = _broadcast_weight("weight", weight, scores.shape, dtype)
    pw, pos_issues = _broadcast_weight("pos_weight", pos_weight, scores.shape, dtype, last_dim=True)
    issues += weight_issues + pos_issues
    raise_if(issues)
    return x, y64.astype(x.dtype, copy=False), w, pw


def _broadcast_weight(
    field: str,
    values: NDArray[Any] | None,
    shape: tuple[int, ...],
    dtype: str,
    *,
    last_dim: bool = False,
) -> tuple[FloatArray | None, list[Issue]]:
    if values is None:
        return None, []
    try:
        fits = np.broadcast_shapes(values.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits or (last_dim and values.ndim > 1 and any(d != 1 for d in values.shape[:-1])):
        where = "along the last dimension of" if last_dim else "to"
        msg = f"{field} of shape {values.shape} does not broadcast {where} the input's shape {shape}"
        return None, [Issue((field,), msg, "shape")]
    checked, issues = check_weights(field, values, dtype, f"{field} is >= 0")
    return (None, issues) if issues else (checked, issues)

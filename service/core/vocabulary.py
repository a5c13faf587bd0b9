"""The names the service speaks, defined once: each loss's outputs (with what they hold) and the
limits of the shared options. The core validates against them; the HTTP schemas, the /v2 registry and
description, and the tests take them from here, so that a new name is served, documented and tested
by adding it in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BINARY_METRICS",
    "BINARY_OUTPUTS",
    "CROSS_ENTROPY_METRICS",
    "CROSS_ENTROPY_OUTPUTS",
    "DEFAULT_BINARY_OUTPUTS",
    "DEFAULT_CALIBRATION_BINS",
    "DEFAULT_OUTPUTS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "EPSILON_BOUNDS",
    "EPSILON_SMALLEST",
    "FOCAL_OUTPUTS",
    "LABEL_SMOOTHING_BOUNDS",
    "MAX_CALIBRATION_BINS",
    "BinaryMetric",
    "BinaryOutput",
    "BinaryRequestOutput",
    "CrossEntropyMetric",
    "CrossEntropyOutput",
    "CrossEntropyRequestOutput",
    "CrossEntropyResult",
    "FocalOutput",
    "OutputInfo",
]

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.integer[Any]]

#: Label smoothing lies in the closed interval, epsilon in the open one.
LABEL_SMOOTHING_BOUNDS: Final = (0.0, 1.0)
EPSILON_BOUNDS: Final = (0.0, 0.5)
#: ... and epsilon is at least the smallest normal number of the compute dtype (below it, it would
#: round to 0 and log(0) is -inf).
EPSILON_SMALLEST: Final = {name: float(np.finfo(name).tiny) for name in ("float64", "float32")}


class OutputInfo(NamedTuple):
    """What an output holds, its shape (``"batch"``: the input's without the class dimension;
    ``"input"``: the input's) and whether it holds integers."""

    description: str
    shape: Literal["batch", "input"]
    integer: bool = False


CrossEntropyOutput = Literal["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"]

#: Each cross-entropy output and what it holds (the order of ``CrossEntropyOutput``).
CROSS_ENTROPY_OUTPUTS: Final[dict[str, OutputInfo]] = {
    "losses": OutputInfo(
        "Unreduced losses, shape of the input without the class dimension; 0 where ignored.", "batch"
    ),
    "softmax": OutputInfo(
        "The class distribution the loss used: softmax(logits), the given probabilities, or "
        "exp(log_probabilities).",
        "input",
    ),
    "log_softmax": OutputInfo("Its log (of the clipped probabilities for probability input).", "input"),
    "grad": OutputInfo("d loss / d input under the requested reduction ('none': of the sum).", "input"),
    "predictions": OutputInfo(
        "Argmax class (first on ties), shape of the input without C.", "batch", integer=True
    ),
    "target_probability": OutputInfo(
        "Probability given to the target class; null where ignored (index targets).", "batch"
    ),
}
DEFAULT_OUTPUTS: Final[tuple[CrossEntropyOutput, ...]] = ("losses", "softmax")

CrossEntropyMetric = Literal[
    "accuracy", "top_k_accuracy", "perplexity", "entropy", "brier_score", "calibration"
]

#: Each cross-entropy metric (``service.core.metrics``) and what it holds: asked for in ``outputs``
#: like the arrays, computed from the distribution the loss used, weighted by ``sample_weight``.
CROSS_ENTROPY_METRICS: Final[dict[str, str]] = {
    "accuracy": (
        "Weighted share of counted samples whose argmax class (first on ties) is the target: "
        "scikit-learn's accuracy_score(sample_weight=). Index targets; null when no weight is counted."
    ),
    "top_k_accuracy": (
        "Weighted share of counted samples whose target is among the top_k classes, ties ranked as "
        "scikit-learn's top_k_accuracy_score (among equal probabilities the higher class index first). "
        "Index targets."
    ),
    "perplexity": (
        "exp of the weighted mean loss (the 'mean' reduction's value, whatever `reduction` is): "
        "torchmetrics' Perplexity for index targets without weights or smoothing."
    ),
    "entropy": (
        "Each sample's predictive entropy -sum_c p_c log p_c of the distribution used, in nats; shape "
        "of the input without C; given for ignored samples too."
    ),
    "brier_score": (
        "Weighted mean over counted samples of sum_c (p_c - onehot(target)_c)^2: scikit-learn's "
        "multi-class brier_score_loss(sample_weight=). Index targets."
    ),
    "calibration": (
        "Expected calibration error (l1) of the top-1 confidence with calibration_bins equal-width "
        "bins, binned as torchmetrics' MulticlassCalibrationError: bins [k/B, (k+1)/B) and a last one "
        "for confidence exactly 1. Per bin: count, weight, confidence_sum, correct_weight (sums a "
        "client adds across chunks) and the mean confidence and accuracy (null if empty). Index targets."
    ),
}
CrossEntropyRequestOutput = Literal[
    "losses",
    "softmax",
    "log_softmax",
    "grad",
    "predictions",
    "target_probability",
    "accuracy",
    "top_k_accuracy",
    "perplexity",
    "entropy",
    "brier_score",
    "calibration",
]
#: ``top_k`` and ``calibration_bins`` defaults (torchmetrics' n_bins is 15), BCE's ``threshold``.
DEFAULT_TOP_K: Final = 5
DEFAULT_CALIBRATION_BINS: Final = 15
DEFAULT_THRESHOLD: Final = 0.5
#: The most calibration bins (a reliability diagram of more is noise).
MAX_CALIBRATION_BINS: Final = 10_000

BinaryOutput = Literal["losses", "sigmoid", "grad", "predictions"]

#: Each binary cross-entropy output and what it holds (the order of ``BinaryOutput``).
BINARY_OUTPUTS: Final[dict[str, OutputInfo]] = {
    "losses": OutputInfo("Elementwise losses.", "input"),
    "sigmoid": OutputInfo("The probabilities used: sigmoid(logits), or the clipped probabilities.", "input"),
    "grad": OutputInfo("d loss / d input under the requested reduction ('none': of the sum).", "input"),
    "predictions": OutputInfo("1 where the probability is >= 0.5, else 0.", "input", integer=True),
}
DEFAULT_BINARY_OUTPUTS: Final[tuple[BinaryOutput, ...]] = ("losses", "sigmoid")

BinaryMetric = Literal["accuracy", "brier_score"]

#: Each binary cross-entropy metric and what it holds (weighted by ``sample_weight``, per element).
BINARY_METRICS: Final[dict[str, str]] = {
    "accuracy": (
        "Weighted share of elements where [probability > threshold] equals the target (targets "
        "rounded at 0.5), as torchmetrics' BinaryAccuracy(threshold) and scikit-learn's accuracy_score."
    ),
    "brier_score": (
        "Weighted mean over elements of (probability - target)^2: scikit-learn's binary "
        "brier_score_loss(sample_weight=)."
    ),
}
BinaryRequestOutput = Literal["losses", "sigmoid", "grad", "predictions", "accuracy", "brier_score"]

FocalOutput = Literal["losses", "probabilities", "grad"]

#: Each focal loss output and what it holds (the order of ``FocalOutput``).
FOCAL_OUTPUTS: Final[dict[str, OutputInfo]] = {
    "losses": OutputInfo("Unreduced losses: the input's shape (sigmoid) or without C (softmax).", "batch"),
    "probabilities": OutputInfo("sigmoid(logits), or softmax(logits) along the class dimension.", "input"),
    "grad": OutputInfo("d loss / d logits under the requested reduction ('none': of the sum).", "input"),
}


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
    accuracy: np.floating[Any] | None = None
    top_k_accuracy: np.floating[Any] | None = None
    perplexity: np.floating[Any] | None = None
    entropy: FloatArray | None = None
    brier_score: np.floating[Any] | None = None
    calibration: dict[str, Any] | None = None

"""The answers, as typed objects: arrays are ``numpy.ndarray`` (floats in the requested dtype), an
output that was not asked for is None, and so is a reduced value the service reports as null."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BinaryCrossEntropyResult",
    "CrossEntropyResult",
    "DivergenceResult",
    "FocalLossResult",
    "SoftmaxResult",
]

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.int64]


class _FromFields:
    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> Self:
        names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
        return cls(**{name: value for name, value in values.items() if name in names})


@dataclass(frozen=True, slots=True)
class CrossEntropyResult(_FromFields):
    """``/v1/cross-entropy``: ``loss`` is None for reduction "none", and where PyTorch gives NaN
    (every target ignored, or the targets' weights summing to 0, under "mean"); ``count`` the
    non-ignored targets; ``target_probability`` is NaN where a target is ignored."""

    loss: float | None
    count: int
    losses: FloatArray | None = None
    softmax: FloatArray | None = None
    log_softmax: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: IntArray | None = None
    target_probability: FloatArray | None = None
    #: The metrics asked for in ``outputs`` (None when not asked for, or undefined).
    accuracy: float | None = None
    top_k_accuracy: float | None = None
    perplexity: float | None = None
    entropy: FloatArray | float | None = None
    brier_score: float | None = None
    calibration: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BinaryCrossEntropyResult(_FromFields):
    """``/v1/binary-cross-entropy``: ``count`` is the number of elements."""

    loss: float | None
    count: int
    losses: FloatArray | None = None
    sigmoid: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: IntArray | None = None
    accuracy: float | None = None
    brier_score: float | None = None


@dataclass(frozen=True, slots=True)
class FocalLossResult(_FromFields):
    """``/v1/focal-loss``: ``loss`` is None for reduction "none" and when nothing is counted;
    ``count`` is every element (sigmoid form) or the non-ignored targets (softmax form);
    ``probabilities`` are the sigmoid or the softmax of the logits, ``grad`` d loss / d logits."""

    loss: float | None
    count: int
    losses: FloatArray | None = None
    probabilities: FloatArray | None = None
    grad: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class SoftmaxResult(_FromFields):
    """``/v1/softmax``."""

    softmax: FloatArray
    log_softmax: FloatArray


@dataclass(frozen=True, slots=True)
class DivergenceResult(_FromFields):
    """``/v1/divergence``, always float64: the reduced values are None for reduction "none"."""

    cross_entropy: float | None
    entropy: float | None
    kl_divergence: float | None
    cross_entropies: FloatArray
    entropies: FloatArray
    kl_divergences: FloatArray

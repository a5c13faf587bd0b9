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
    "BINARY_OUTPUTS",
    "CROSS_ENTROPY_OUTPUTS",
    "DEFAULT_BINARY_OUTPUTS",
    "DEFAULT_OUTPUTS",
    "EPSILON_BOUNDS",
    "EPSILON_SMALLEST",
    "FOCAL_OUTPUTS",
    "LABEL_SMOOTHING_BOUNDS",
    "BinaryOutput",
    "CrossEntropyOutput",
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

BinaryOutput = Literal["losses", "sigmoid", "grad", "predictions"]

#: Each binary cross-entropy output and what it holds (the order of ``BinaryOutput``).
BINARY_OUTPUTS: Final[dict[str, OutputInfo]] = {
    "losses": OutputInfo("Elementwise losses.", "input"),
    "sigmoid": OutputInfo("The probabilities used: sigmoid(logits), or the clipped probabilities.", "input"),
    "grad": OutputInfo("d loss / d input under the requested reduction ('none': of the sum).", "input"),
    "predictions": OutputInfo("1 where the probability is >= 0.5, else 0.", "input", integer=True),
}
DEFAULT_BINARY_OUTPUTS: Final[tuple[BinaryOutput, ...]] = ("losses", "sigmoid")

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

"""Options shared by the losses: reduction, precision, smoothing, clipping, which outputs to compute;
checked once into a ``LossOptions``, and the one reduction every loss uses."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final, Literal, NamedTuple, TypeVar, get_args

import numpy as np
from numpy.typing import NDArray

from service.core.checks import format_number, raise_if
from service.core.errors import Issue
from service.core.vocabulary import EPSILON_BOUNDS, EPSILON_SMALLEST, LABEL_SMOOTHING_BOUNDS

__all__ = [
    "COMPUTE_DTYPES",
    "DEFAULT_EPSILON",
    "REDUCTIONS",
    "ComputeDtype",
    "LossOptions",
    "Reduction",
    "check_choice",
    "check_epsilon",
    "check_options",
    "loss_options",
    "reduce_losses",
    "reduction_divisor",
]

Reduction = Literal["mean", "sum", "none"]
ComputeDtype = Literal["float64", "float32"]

#: float64 machine epsilon, scikit-learn's clip for probabilities.
DEFAULT_EPSILON: Final = float(np.finfo(np.float64).eps)


#: The values of each option, spelled out once (``get_args`` and hashing ``Literal`` types are slow).
REDUCTIONS: Final[tuple[str, ...]] = get_args(Reduction)
COMPUTE_DTYPES: Final[tuple[str, ...]] = get_args(ComputeDtype)


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> list[Issue]:
    """``value`` must be one of ``allowed``."""
    if value in allowed:
        return []
    listed = ", ".join(repr(choice) for choice in allowed)
    return [Issue((field,), f"{field} = {value!r} is not one of {listed}", "enum")]


def check_epsilon(epsilon: float, dtype: str = "float64") -> list[Issue]:
    """A clip in (0, 0.5) that the compute dtype can hold: below its smallest normal number it would
    round to 0 (float32: 1.2e-38), and log(0) is -inf."""
    low, high = EPSILON_BOUNDS
    if not low < epsilon < high:
        msg = f"epsilon = {format_number(epsilon)} is outside the open interval ({low:g}, {high:g})"
        return [Issue(("epsilon",), msg, "out_of_range")]
    smallest = EPSILON_SMALLEST["float32" if dtype == "float32" else "float64"]
    if epsilon < smallest:
        msg = (
            f"epsilon = {format_number(epsilon)} is below the smallest normal {dtype} number ({smallest:.8g})"
        )
        return [Issue(("epsilon",), msg, "out_of_range")]
    return []


def check_options(
    reduction: str,
    label_smoothing: float,
    epsilon: float,
    dtype: str,
    outputs: Collection[str],
    known_outputs: tuple[str, ...],
) -> list[Issue]:
    """Every scalar option of a loss, checked at once."""
    issues = check_choice("reduction", reduction, REDUCTIONS) + check_choice("dtype", dtype, COMPUTE_DTYPES)
    low, high = LABEL_SMOOTHING_BOUNDS
    if not low <= label_smoothing <= high:
        msg = f"label_smoothing = {format_number(label_smoothing)} is outside [{low:g}, {high:g}]"
        issues.append(Issue(("label_smoothing",), msg, "out_of_range"))
    issues += check_epsilon(epsilon, dtype)
    for position, name in enumerate(outputs):
        if name not in known_outputs:
            listed = ", ".join(repr(choice) for choice in known_outputs)
            msg = f"outputs[{position}] = {name!r} is not one of {listed}"
            issues.append(Issue(("outputs", position), msg, "enum"))
    return issues


class LossOptions(NamedTuple):
    """A loss's scalar options, checked (a tuple: immutable, and cheaper to build than a dataclass)."""

    reduction: Reduction
    label_smoothing: float
    epsilon: float
    dtype: ComputeDtype
    outputs: Collection[str]


def loss_options(
    *,
    reduction: Reduction,
    label_smoothing: float,
    epsilon: float,
    dtype: ComputeDtype,
    outputs: Collection[str],
    known_outputs: tuple[str, ...],
    before: list[Issue] | None = None,
    after: list[Issue] | None = None,
) -> LossOptions:
    """The options, checked once; raises ``InvalidInputError`` listing every problem found here, after
    ``before`` and before ``after`` (a loss's own option problems, in the order its messages list them)."""
    found = check_options(reduction, label_smoothing, epsilon, dtype, outputs, known_outputs)
    if before or after or found:
        raise_if((before or []) + found + (after or []))
    return LossOptions(reduction, label_smoothing, epsilon, dtype, outputs)


_Number = TypeVar("_Number", float, np.floating[Any])


def reduction_divisor(reduction: str, denominator: _Number, one: _Number) -> _Number | None:
    """What the summed losses and each element's gradient are divided by.

    ``"mean"`` divides by ``denominator`` (the number of elements, or the targets' total weight);
    when that is not positive the mean is undefined (PyTorch gives NaN) and ``None`` is returned: the
    loss is then ``None`` and the gradient zeros. ``"sum"`` and ``"none"`` (whose gradient is that of
    the sum) divide by ``one``.

    >>> reduction_divisor("mean", 4.0, 1.0), reduction_divisor("mean", 0.0, 1.0)
    (4.0, None)
    """
    if reduction != "mean":
        return one
    return denominator if denominator > 0 else None


def reduce_losses(
    losses: NDArray[np.floating[Any]], reduction: str, divisor: float | np.floating[Any] | None
) -> np.floating[Any] | None:
    """The reduced loss: ``sum(losses)`` for ``"sum"``, ``sum(losses) / divisor`` for ``"mean"``, and
    ``None`` for ``"none"`` or an undefined mean (``divisor`` from ``reduction_divisor``).

    >>> float(reduce_losses(np.array([1.0, 2.0]), "mean", np.float64(2)))
    1.5
    """
    if reduction == "none" or divisor is None:
        return None
    total: np.floating[Any] = np.add.reduce(losses, axis=None)
    if reduction == "mean":
        mean: np.floating[Any] = total / divisor
        return mean
    return total

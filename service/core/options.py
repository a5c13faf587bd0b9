"""Options shared by the losses: reduction, precision, smoothing, clipping, which outputs to compute."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal, get_args

import numpy as np

from service.core.checks import format_number
from service.core.errors import Issue

__all__ = [
    "COMPUTE_DTYPES",
    "DEFAULT_EPSILON",
    "REDUCTIONS",
    "ComputeDtype",
    "Reduction",
    "check_choice",
    "check_epsilon",
    "check_options",
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
    if not 0.0 < epsilon < 0.5:
        msg = f"epsilon = {format_number(epsilon)} is outside the open interval (0, 0.5)"
        return [Issue(("epsilon",), msg, "out_of_range")]
    smallest = float(np.finfo(np.float32 if dtype == "float32" else np.float64).tiny)
    if epsilon < smallest:
        msg = (
            f"epsilon = {format_number(epsilon)} is below the smallest normal {dtype} number ({smallest:.8g})"
        )
        return [Issue(("epsilon",), msg, "out_of_range")]
    return []


def check_options(
    *,
    reduction: str,
    label_smoothing: float,
    epsilon: float,
    dtype: str,
    outputs: Collection[str],
    known_outputs: tuple[str, ...],
) -> list[Issue]:
    """Every scalar option of a loss, checked at once."""
    issues = check_choice("reduction", reduction, REDUCTIONS) + check_choice("dtype", dtype, COMPUTE_DTYPES)
    if not 0.0 <= label_smoothing <= 1.0:
        msg = f"label_smoothing = {format_number(label_smoothing)} is outside [0, 1]"
        issues.append(Issue(("label_smoothing",), msg, "out_of_range"))
    issues += check_epsilon(epsilon, dtype)
    for position, name in enumerate(outputs):
        if name not in known_outputs:
            listed = ", ".join(repr(choice) for choice in known_outputs)
            msg = f"outputs[{position}] = {name!r} is not one of {listed}"
            issues.append(Issue(("outputs", position), msg, "enum"))
    return issues

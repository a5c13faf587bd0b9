"""Options shared by the losses: reduction, precision, smoothing, clipping, which outputs to compute."""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any, Final, Literal, get_args

import numpy as np

from service.core.checks import format_number
from service.core.errors import Issue

__all__ = ["DEFAULT_EPSILON", "ComputeDtype", "Reduction", "check_choice", "check_options"]

Reduction = Literal["mean", "sum", "none"]
ComputeDtype = Literal["float64", "float32"]

#: float64 machine epsilon, scikit-learn's clip for probabilities.
DEFAULT_EPSILON: Final = float(np.finfo(np.float64).eps)


@functools.cache
def _allowed(choices: Any) -> frozenset[str]:
    return frozenset(get_args(choices))


def check_choice(field: str, value: str, choices: Any) -> list[Issue]:
    """``value`` must be one of the ``Literal`` type ``choices``."""
    if value in _allowed(choices):
        return []
    allowed = get_args(choices)
    listed = ", ".join(repr(choice) for choice in allowed)
    return [Issue((field,), f"{field} = {value!r} is not one of {listed}", "enum")]


def check_options(
    *,
    reduction: str,
    label_smoothing: float,
    epsilon: float,
    dtype: str,
    outputs: Collection[str],
    known_outputs: Any,
) -> list[Issue]:
    """Every scalar option of a loss, checked at once."""
    issues = check_choice("reduction", reduction, Reduction) + check_choice("dtype", dtype, ComputeDtype)
    if not 0.0 <= label_smoothing <= 1.0:
        msg = f"label_smoothing = {format_number(label_smoothing)} is outside [0, 1]"
        issues.append(Issue(("label_smoothing",), msg, "out_of_range"))
    if not 0.0 < epsilon < 0.5:
        msg = f"epsilon = {format_number(epsilon)} is outside the open interval (0, 0.5)"
        issues.append(Issue(("epsilon",), msg, "out_of_range"))
    known = _allowed(known_outputs)
    for position, name in enumerate(outputs):
        if name not in known:
            listed = ", ".join(repr(choice) for choice in get_args(known_outputs))
            msg = f"outputs[{position}] = {name!r} is not one of {listed}"
            issues.append(Issue(("outputs", position), msg, "enum"))
    return issues

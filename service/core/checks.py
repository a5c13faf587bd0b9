"""Vectorised checks shared by every loss: each scans a whole array in NumPy and, only when something is
wrong, spells out the first few offending positions (``logits[3][1] = NaN is not a finite number``).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from service.core.errors import MAX_REPORTED_ISSUES, InvalidInputError, Issue, Loc, format_loc

__all__ = [
    "CLASS_AXIS",
    "DISTRIBUTION_TOLERANCE",
    "FLOAT_DTYPES",
    "all_finite",
    "cast_to_dtype",
    "check_distributions",
    "check_finite",
    "check_in_range",
    "check_representable",
    "check_weights",
    "format_number",
    "issues_at",
    "raise_if",
]

#: How far a distribution's sum may stray from 1 (absolute): the seed's 4-decimal probabilities sum to
#: 0.9999, and rounding C values to 4 decimals moves the sum by at most C * 5e-5.
DISTRIBUTION_TOLERANCE = 1e-3

#: Marks the summed-over axis in a location: ``("probabilities", 3, ":")`` is ``probabilities[3][:]``.
CLASS_AXIS = ":"

FLOAT_DTYPES: dict[str, type[np.floating[Any]]] = {"float64": np.float64, "float32": np.float32}


def format_number(value: float | int | np.generic) -> str:
    """A short, exact rendering of one input value for an error message (JSON spelling of non-finites)."""
    plain = value.item() if isinstance(value, np.generic) else value
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, int):
        return str(plain)
    number = float(plain)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


def issues_at(
    field: str,
    bad: NDArray[np.bool_],
    values: NDArray[Any],
    problem: str,
    kind: str,
    *,
    prefix: Loc = (),
) -> list[Issue]:
    """One issue per offending element (up to ``MAX_REPORTED_ISSUES``, then a count of the rest).

    ``bad`` and ``values`` have the same shape; ``problem`` completes the sentence
    ``"<field>[i][j] = <value> <problem>"``.
    """
    flat = np.flatnonzero(bad)
    issues: list[Issue] = []
    for position in flat[:MAX_REPORTED_ISSUES]:
        index = tuple(int(i) for i in np.unravel_index(int(position), bad.shape))
        loc: Loc = (field, *prefix, *index)
        value = format_number(values[index])
        issues.append(Issue(loc, f"{format_loc(loc)} = {value} {problem}", kind))
    if flat.size > MAX_REPORTED_ISSUES:
        more = flat.size - MAX_REPORTED_ISSUES
        issues.append(Issue((field,), f"{field}: {more} more element(s) {problem}", kind))
    return issues


def raise_if(issues: list[Issue]) -> None:
    if issues:
        raise InvalidInputError(issues)


def all_finite(values: NDArray[Any] | np.generic) -> bool:
    """Whether every element is finite, from two reductions and without a temporary array
    (NaN propagates through both, an infinity shows in one of them)."""
    array = np.asarray(values)
    if array.size == 0 or array.dtype.kind in "iub":
        return True
    return bool(
        np.isfinite(np.maximum.reduce(array, axis=None)) and np.isfinite(np.minimum.reduce(array, axis=None))
    )


#: What an infinite value's message adds: a client that sent 1e400 sees it as Infinity.
INFINITY_HINT: Final = "(numbers beyond +-1.8e308, such as 1e400, read as Infinity)"


def check_finite(field: str, values: NDArray[np.floating[Any]]) -> list[Issue]:
    """NaN and +-Infinity (also what an overflowing literal such as 1e400 parses to) are refused."""
    if all_finite(values):
        return []
    nan = np.isnan(values)
    infinite = ~nan & ~np.isfinite(values)
    return issues_at(field, nan, values, "is not a finite number", "not_finite") + issues_at(
        field, infinite, values, f"is not a finite number {INFINITY_HINT}", "not_finite"
    )


def check_in_range(
    field: str,
    values: NDArray[Any],
    low: float,
    high: float,
    *,
    kind: str = "out_of_range",
    what: str | None = None,
) -> list[Issue]:
    """Every element in the closed interval ``[low, high]``."""
    bad = (values < low) | (values > high)
    if not bad.any():
        return []
    return issues_at(field, bad, values, what or f"is outside [{low:g}, {high:g}]", kind)


def check_distributions(
    field: str,
    values: NDArray[np.floating[Any]],
    axis: int,
    *,
    exponentiate: bool = False,
) -> list[Issue]:
    """Each slice along ``axis`` must sum to 1 within ``DISTRIBUTION_TOLERANCE`` (no renormalisation).

    With ``exponentiate`` the slices hold log-probabilities and ``exp`` of them is summed.
    """
    totals = np.sum(np.exp(values) if exponentiate else values, axis=axis)
    bad = np.abs(totals - 1.0) > DISTRIBUTION_TOLERANCE
    if not bad.any():
        return []
    flat = np.flatnonzero(bad)
    what = "exp() of it sums" if exponentiate else "sums"
    issues: list[Issue] = []
    for position in flat[:MAX_REPORTED_ISSUES]:
        index = [int(i) for i in np.unravel_index(int(position), totals.shape)]
        index.insert(axis, -1)
        loc: Loc = (field, *(CLASS_AXIS if i == -1 else i for i in index))
        total = f"{float(totals.flat[position]):.6g}"
        issues.append(
            Issue(
                loc,
                f"{format_loc(loc)} is not a probability distribution: {what} to {total}, "
                f"not 1 (tolerance {DISTRIBUTION_TOLERANCE:g})",
                "not_a_distribution",
            )
        )
    if flat.size > MAX_REPORTED_ISSUES:
        more = flat.size - MAX_REPORTED_ISSUES
        issues.append(
            Issue(
                (field,),
                f"{field}: {more} more distribution(s) do not sum to 1",
                "not_a_distribution",
            )
        )
    return issues


def cast_to_dtype(
    field: str, values: NDArray[np.floating[Any]], dtype: str
) -> tuple[NDArray[np.floating[Any]], list[Issue]]:
    """Convert finite float64 input to the compute dtype, refusing values the dtype cannot hold."""
    target = FLOAT_DTYPES[dtype]
    if values.dtype == target:
        return values, []
    limit = float(np.finfo(target).max)
    bad = np.abs(values) > limit
    if bad.any():
        problem = f"is outside the {dtype} range (|x| <= {limit:.8g})"
        return values, issues_at(field, bad, values, problem, "out_of_dtype_range")
    return values.astype(target), []


def check_weights(
    field: str, values: NDArray[Any], dtype: str, negative: str
) -> tuple[NDArray[np.floating[Any]], list[Issue]]:
    """Weights of any kind (class, sample, positive-class): finite, non-negative, then in the compute
    dtype; ``negative`` says what a negative one is (``is negative: ...``). The values are meaningful
    only without issues."""
    wide: NDArray[np.floating[Any]] = values.astype(np.float64, copy=False)
    issues = check_finite(field, wide) or check_in_range(
        field, wide, 0.0, np.inf, what=f"is negative: {negative}"
    )
    if issues:
        return wide, issues
    return cast_to_dtype(field, wide, dtype)


def check_representable(field: str, dtype: str, results: dict[str, Any]) -> list[Issue]:
    """A last guard on outputs: one that overflowed (e.g. a sum of losses near 1e308) is refused with
    a clear message instead of being sent as Infinity. ``None`` entries (not computed) are skipped."""
    issues: list[Issue] = []
    for name, value in results.items():
        if value is not None and not all_finite(value):
            msg = (
                f"the {name} of these {field} is not representable in {dtype} "
                "(it overflows); scale the input or the weights down"
            )
            issues.append(Issue((field,), msg, "overflow"))
    return issues

"""Cross-entropy as the difference between two distributions (the seed article's first part).

For a true distribution ``p`` and a predicted one ``q`` over the same classes, in base ``b``:

* cross-entropy ``H(p, q) = -sum_c p_c log_b q_c``: the average code length when events drawn from p
  are encoded with a code optimised for q;
* entropy ``H(p) = -sum_c p_c log_b p_c``: the shortest possible average, with a code made for p;
* Kullback-Leibler divergence ``KL(p || q) = sum_c p_c (log_b p_c - log_b q_c) >= 0``: the excess,
  so that ``H(p, q) = H(p) + KL(p || q)``.

``0 * log 0 = 0`` (``xlogy``), and ``q`` is clipped to ``[epsilon, 1]`` so that a class with p > 0 and
q = 0 costs ``-log(epsilon)`` instead of infinity. Distributions lie along the last axis: ``(C,)`` is
one distribution, ``(N, C)`` N of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from service.core.checks import check_distributions, check_finite, check_in_range, raise_if
from service.core.errors import InvalidInputError, Issue
from service.core.options import (
    DEFAULT_EPSILON,
    REDUCTIONS,
    Reduction,
    check_choice,
    check_epsilon,
    reduce_losses,
    reduction_divisor,
)
from service.core.softmax import FloatArray

__all__ = ["BASES", "Base", "DivergenceResult", "divergence"]

Base = Literal["e", "2", "10"]
BASES: Final[dict[str, float]] = {"e": 1.0, "2": math.log(2.0), "10": math.log(10.0)}


@dataclass(frozen=True, slots=True)
class DivergenceResult:
    """Per-distribution values (shape of the input without its last axis) and their reduction
    (``None`` for ``reduction="none"``)."""

    cross_entropy: np.floating[Any] | None
    entropy: np.floating[Any] | None
    kl_divergence: np.floating[Any] | None
    cross_entropies: FloatArray
    entropies: FloatArray
    kl_divergences: FloatArray


def _xlogy(x: FloatArray, y: FloatArray) -> FloatArray:
    """``x * log(y)``, with 0 where ``x == 0`` whatever ``y`` is."""
    positive = x > 0
    result: FloatArray = np.where(positive, x * np.log(np.where(positive, y, 1.0)), 0.0)
    return result


def divergence(
    p: NDArray[Any],
    q: NDArray[Any],
    *,
    base: Base = "e",
    reduction: Reduction = "mean",
    epsilon: float = DEFAULT_EPSILON,
) -> DivergenceResult:
    """H(p, q), H(p) and KL(p || q) per distribution along the last axis, and reduced over them.

    Args:
        p: the true distribution(s), ``(C,)`` or ``(N, C)``, values in [0, 1] summing to 1 within 1e-3.
        q: the predicted distribution(s), the same shape and constraints.
        base: ``"e"`` (nats), ``"2"`` (bits) or ``"10"`` (hartleys).
        reduction: ``"mean"`` over the distributions, ``"sum"``, or ``"none"``.
        epsilon: ``q`` is clipped to ``[epsilon, 1]``; in (0, 0.5).

    Raises:
        InvalidInputError: listing every problem found; nothing is computed then.

    Example (the seed: a one-hot truth against a half-trained network's prediction):
        >>> q = np.array([0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958])
        >>> round(float(divergence(np.eye(10)[4], q).cross_entropy), 4)
        2.4361
    """
    pp, qq = _prepare(p, q, base, reduction, epsilon)
    qq = np.clip(qq, epsilon, 1.0)
    scale = BASES[base]
    p_log_p = _xlogy(pp, pp)
    p_log_q = _xlogy(pp, qq)
    # 0 - x rather than -x: an entropy of exactly zero is written 0.0, not -0.0.
    cross_entropies = (0.0 - np.sum(p_log_q, axis=-1)) / scale
    entropies = (0.0 - np.sum(p_log_p, axis=-1)) / scale
    kl_divergences = np.sum(p_log_p - p_log_q, axis=-1) / scale

    divisor = reduction_divisor(reduction, np.float64(cross_entropies.size), np.float64(1))

    def reduce(values: FloatArray) -> np.floating[Any] | None:
        return reduce_losses(values, reduction, divisor)

    return DivergenceResult(
        cross_entropy=reduce(cross_entropies),
        entropy=reduce(entropies),
        kl_divergence=reduce(kl_divergences),
        cross_entropies=cross_entropies,
        entropies=entropies,
        kl_divergences=kl_divergences,
    )


def _prepare(
    p: NDArray[Any], q: NDArray[Any], base: str, reduction: str, epsilon: float
) -> tuple[FloatArray, FloatArray]:
    """The options, then both distributions' shapes and values, every problem reported at once."""
    issues = check_choice("base", base, tuple(BASES)) + check_choice("reduction", reduction, REDUCTIONS)
    issues += check_epsilon(epsilon)
    for name, values in (("p", p), ("q", q)):
        if values.ndim not in (1, 2) or values.size == 0:
            msg = f"{name} has shape {values.shape}: a distribution (C,) or distributions (N, C) are needed"
            issues.append(Issue((name,), msg, "shape"))
    raise_if(issues)
    if p.shape != q.shape:
        msg = f"p has shape {p.shape} and q has shape {q.shape}; they must be equal"
        raise InvalidInputError.single(("q",), msg, "shape")

    arrays: dict[str, FloatArray] = {}
    for name, values in (("p", p), ("q", q)):
        wide: FloatArray = values.astype(np.float64, copy=False)
        found = check_finite(name, wide)
        if not found:
            found = check_in_range(name, wide, 0.0, 1.0)
        if not found:
            found = check_distributions(name, wide, wide.ndim - 1)
        issues += found
        arrays[name] = wide
    raise_if(issues)
    return arrays["p"], arrays["q"]

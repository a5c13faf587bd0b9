"""Focal loss (Lin et al., 2017): cross-entropy scaled down where the model is already right.

With ``p_t`` the probability given to the true class and ``alpha_t`` its weight, each element's loss is
``l = -alpha_t * (1 - p_t)**gamma * log(p_t)``; ``gamma = 0`` and ``alpha_t = 1`` give cross-entropy.

* sigmoid (a target of the logits' own shape, values in [0, 1]), as
  ``torchvision.ops.sigmoid_focal_loss``: ``p = sigmoid(x)``, ``p_t = p y + (1 - p)(1 - y)``,
  ``l = alpha_t * (1 - p_t)**gamma * bce(x, y)`` with ``alpha_t = alpha y + (1 - alpha)(1 - y)`` for a
  scalar ``alpha`` in [0, 1] (none: ``alpha_t = 1``, torchvision's ``alpha=-1``). ``1 - p_t`` is
  computed as ``y sigmoid(-x) + (1 - y) p``, exact where ``p`` rounds to 1.
  ``dl/dx = alpha_t ((1 - p_t)**gamma (p - y) - gamma (1 - p_t)**(gamma - 1) (2y - 1) p (1 - p) bce)``.
* softmax (class-index targets, the logits' shape without the class dimension, as cross-entropy):
  ``lp = log_softmax(x)``, ``p_t = exp(lp[t])``, ``alpha_t = alpha[t]`` for class weights ``alpha``
  ``(C,)`` (none: 1); ``ignore_index`` targets count 0 and are not counted.
  ``dl/dx_j = alpha_t F (softmax_j - [j = t])`` with ``F = (1 - p_t)**gamma - gamma p_t lp[t]
  (1 - p_t)**(gamma - 1)``.

Where ``1 - p_t`` is 0 the ``(1 - p_t)**(gamma - 1)`` terms are taken as their limit, 0. ``"mean"``
averages over the elements counted (``alpha`` is not in the denominator, as torchvision); with none
counted it is undefined: ``loss=None`` and a zero gradient.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from service.core.binary import log_sigmoid, prepare_binary_scores, sigmoid
from service.core.checks import check_representable, format_number, raise_if
from service.core.errors import Issue
from service.core.kernels import softmax_rows
from service.core.options import (
    DEFAULT_EPSILON,
    ComputeDtype,
    LossOptions,
    Reduction,
    loss_options,
    reduce_losses,
    reduction_divisor,
)
from service.core.scores import ClassScores, check_weight, prepare_class_scores, restore
from service.core.softmax import FloatArray
from service.core.vocabulary import FOCAL_OUTPUTS, FocalOutput

__all__ = ["DEFAULT_FOCAL_OUTPUTS", "DEFAULT_GAMMA", "FocalLossResult", "focal_loss"]

DEFAULT_GAMMA: Final = 2.0
DEFAULT_FOCAL_OUTPUTS: Final[tuple[FocalOutput, ...]] = ("losses",)


@dataclass(frozen=True, slots=True)
class FocalLossResult:
    """The reduced loss (``None`` for ``"none"`` or an undefined mean), the number of elements counted,
    and the outputs asked for (shapes in ``FOCAL_OUTPUTS``; ``None`` when not asked for)."""

    loss: np.floating[Any] | None
    count: int
    losses: FloatArray | None = None
    probabilities: FloatArray | None = None
    grad: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class _Terms:
    """One loss's per-element results and what ``"mean"`` divides by."""

    losses: FloatArray
    probabilities: FloatArray
    grad: FloatArray | None  # of the sum
    count: int


def focal_loss(
    logits: NDArray[Any],
    target: NDArray[Any],
    *,
    gamma: float = DEFAULT_GAMMA,
    alpha: float | NDArray[Any] | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    dtype: ComputeDtype = "float64",
    outputs: Collection[FocalOutput] = DEFAULT_FOCAL_OUTPUTS,
) -> FocalLossResult:
    """Focal loss of ``logits`` against ``target``: sigmoid when the target has the logits' shape,
    softmax over the class dimension when it holds class indices (see the module docstring).

    Args:
        logits: any shape (sigmoid); ``(C,)``, ``(N, C)`` or ``(N, C, d1..dk)`` (softmax).
        target: values in [0, 1] of the logits' shape, or class indices of their shape without C.
        gamma: the focusing exponent, >= 0 (0: cross-entropy).
        alpha: sigmoid: the positives' weight in [0, 1]; softmax: ``(C,)`` class weights; None: 1.
        ignore_index: softmax's targets equal to it are skipped (default -100).
        reduction, dtype, outputs: as for ``cross_entropy``.

    Raises:
        InvalidInputError: listing every problem found; nothing is computed then.

    Example (torchvision's sigmoid_focal_loss(x, y, alpha=0.25, reduction="sum")):
        >>> r = focal_loss(np.array([0.0, 2.0]), np.array([1.0, 0.0]), alpha=0.25, reduction="sum")
        >>> round(float(r.loss), 4)
        1.2809
    """
    options = _options(gamma, reduction, dtype, outputs)
    weights = None if alpha is None else np.asarray(alpha)
    want_grad = "grad" in options.outputs
    with np.errstate(over="ignore"):
        if target.shape == logits.shape:
            terms = _sigmoid_terms(logits, target, weights, gamma, dtype, want_grad=want_grad)
            shape_of: _Layout = _same_shape
        else:
            problem = _softmax_problem(logits, target, weights, ignore_index, dtype)
            terms = _softmax_terms(problem, gamma, want_grad=want_grad)
            shape_of = _class_shapes(problem)
        result = _reduce(terms, options, shape_of)
    finite = {"loss": result.loss, "losses": result.losses, "grad": result.grad}
    raise_if(check_representable("logits", dtype, finite))
    return result


def _options(
    gamma: float, reduction: Reduction, dtype: ComputeDtype, outputs: Collection[str]
) -> LossOptions:
    issues: list[Issue] = []
    if not 0.0 <= gamma < float("inf"):
        msg = f"gamma = {format_number(gamma)} must be a finite number >= 0"
        issues.append(Issue(("gamma",), msg, "out_of_range"))
    return loss_options(
        reduction=reduction,
        label_smoothing=0.0,
        epsilon=DEFAULT_EPSILON,
        dtype=dtype,
        outputs=outputs,
        known_outputs=tuple(FOCAL_OUTPUTS),
        after=issues,
    )


class _Layout(Protocol):
    """Puts a per-element (``batch``) or per-score array back in the input's layout."""

    def __call__(self, values: FloatArray, *, batch: bool) -> FloatArray: ...


def _reduce(terms: _Terms, options: LossOptions, shape_of: _Layout) -> FocalLossResult:
    """The one reduction, and the outputs asked for in the input's layout."""
    kind = terms.losses.dtype.type
    divisor = reduction_divisor(options.reduction, kind(terms.count), kind(1))
    grad = terms.grad
    if grad is not None:
        grad = np.zeros_like(grad) if divisor is None else grad / divisor
    wanted = options.outputs
    return FocalLossResult(
        loss=reduce_losses(terms.losses, options.reduction, divisor),
        count=terms.count,
        losses=shape_of(terms.losses, batch=True) if "losses" in wanted else None,
        probabilities=shape_of(terms.probabilities, batch=False) if "probabilities" in wanted else None,
        grad=None if grad is None else shape_of(grad, batch=False),
    )


def _same_shape(values: FloatArray, *, batch: bool) -> FloatArray:
    return values


def _class_shapes(problem: ClassScores) -> _Layout:
    def shape_of(values: FloatArray, *, batch: bool) -> FloatArray:
        return values.reshape(problem.batch_shape) if batch else restore(values, problem.input_shape)

    return shape_of


# --- sigmoid ------------------------------------------------------------------------------------


def _sigmoid_terms(
    logits: NDArray[Any],
    target: NDArray[Any],
    alpha: NDArray[Any] | None,
    gamma: float,
    dtype: ComputeDtype,
    *,
    want_grad: bool,
) -> _Terms:
    x, y = _sigmoid_inputs(logits, target, alpha, dtype)
    kind = x.dtype.type
    p, not_p = sigmoid(x), sigmoid(-x)
    one_minus = y * not_p + (1 - y) * p  # 1 - p_t
    bce = (1 - y) * x - log_sigmoid(x)
    a = None if alpha is None else kind(float(alpha))
    alpha_t = kind(1) if a is None else a * y + (1 - a) * (1 - y)
    g = kind(gamma)
    modulating = one_minus**g
    losses = alpha_t * modulating * bce
    grad = None
    if want_grad:
        # (1 - p_t)**(gamma - 1) is taken as 0 where 1 - p_t is 0 (the product's limit).
        lower = np.where(one_minus > 0, one_minus ** (g - 1), kind(0)) if gamma != 0 else kind(0)
        grad = alpha_t * (modulating * (p - y) - g * lower * (2 * y - 1) * p * not_p * bce)
    return _Terms(losses, p, grad, int(x.size))


def _sigmoid_inputs(
    logits: NDArray[Any], target: NDArray[Any], alpha: NDArray[Any] | None, dtype: ComputeDtype
) -> tuple[FloatArray, FloatArray]:
    """Logits and targets in the compute dtype, checked as binary cross-entropy checks them."""
    issues: list[Issue] = []
    if alpha is not None and (alpha.ndim != 0 or not 0.0 <= float(alpha) <= 1.0):
        msg = "alpha of a sigmoid focal loss (a target of the logits' shape) is one number in [0, 1]"
        issues.append(Issue(("alpha",), msg, "out_of_range"))
    raise_if(issues)
    x, y, _, _ = prepare_binary_scores(logits, target, "logits", None, None, dtype)
    return x, y


# --- softmax ------------------------------------------------------------------------------------


def _softmax_problem(
    logits: NDArray[Any],
    target: NDArray[Any],
    alpha: NDArray[Any] | None,
    ignore_index: int | None,
    dtype: ComputeDtype,
) -> ClassScores:
    """Class scores as cross-entropy checks them, with ``alpha`` checked as its class weights."""
    problem = prepare_class_scores(logits, target, "logits", None, ignore_index, dtype, soft_targets=False)
    if alpha is None:
        return problem
    weights, issues = check_weight(alpha, problem.x.shape[1], dtype, field="alpha")
    raise_if(issues)
    return replace(problem, weight=weights)


def _softmax_terms(problem: ClassScores, gamma: float, *, want_grad: bool) -> _Terms:
    x = problem.x
    assert problem.index_target is not None and problem.keep is not None
    rows = np.arange(x.shape[0])
    kind = x.dtype.type
    probabilities, log_probabilities = softmax_rows(x)
    keep, target = problem.keep, problem.index_target
    picked = log_probabilities[rows, target]  # log p_t
    one_minus = -np.expm1(picked)  # 1 - p_t
    alpha_t = problem.weight[target] if problem.weight is not None else kind(1)
    g = kind(gamma)
    modulating = one_minus**g
    losses = np.where(keep, -alpha_t * modulating * picked, kind(0))
    grad = None
    if want_grad:
        lower = np.where(one_minus > 0, one_minus ** (g - 1), kind(0)) if gamma != 0 else kind(0)
        factor = np.where(keep, alpha_t * (modulating - g * np.exp(picked) * picked * lower), kind(0))
        grad = probabilities * factor[:, None]
        grad[rows, target] -= factor
    return _Terms(losses, probabilities, grad, int(np.count_nonzero(keep)))

"""Cross-entropy's per-element terms and their gradients, in the notation of ``service.core.multiclass``.

``coefficients`` turns the target into the coefficients ``a`` of ``l_i = -sum_c a[i, c] * lp[i, c]``;
``from_logits`` computes the losses, the outputs and the gradient in one blocked softmax pass;
``from_distribution`` does the same for probabilities and log-probabilities. All work on class-last
``(M, C)`` arrays (``service.core.scores``); the caller reduces and restores the input's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core.kernels import RowBlock, for_each_row_block
from service.core.scores import ClassScores, InputKind, IntArray
from service.core.softmax import FloatArray

__all__ = ["Coefficients", "Parts", "coefficients", "from_distribution", "from_logits"]


@dataclass(frozen=True, slots=True)
class Coefficients:
    """What the target contributes, in the notation of the module docstring.

    ``target_weight`` is ``m_i * w[t_i]`` (index targets), ``a_sum`` is ``sum_c a[i, c]``, ``soft`` the
    dense ``a`` of soft targets; ``denominator`` is what ``"mean"`` divides by.
    """

    target: IntArray | None
    keep: NDArray[np.bool_] | None
    target_weight: FloatArray | None
    class_weight: FloatArray | None
    class_weight_total: np.floating[Any]
    soft: FloatArray | None
    a_sum: FloatArray
    denominator: np.floating[Any]
    count: int


def coefficients(problem: ClassScores, s: np.floating[Any]) -> Coefficients:
    rows, classes = problem.x.shape
    dtype = problem.x.dtype.type
    weight = problem.weight
    total = np.add.reduce(weight) if weight is not None else dtype(classes)
    if problem.soft_target is not None:
        a = problem.soft_target * (1 - s) + s / classes
        if weight is not None:
            a *= weight
        return Coefficients(None, None, None, weight, total, a, np.add.reduce(a, axis=1), dtype(rows), rows)
    assert problem.index_target is not None and problem.keep is not None
    target, keep = problem.index_target, problem.keep
    target_weight = (weight[target] if weight is not None else np.ones(rows, dtype=dtype)) * keep
    a_sum = (1 - s) * target_weight
    if s > 0:
        a_sum += (s / classes * total) * keep
    return Coefficients(
        target,
        keep,
        target_weight,
        weight,
        total,
        None,
        a_sum,
        np.add.reduce(target_weight),
        int(np.count_nonzero(keep)),
    )


@dataclass(slots=True)
class Parts:
    """A loss's per-element results, class-last (``(M,)`` and ``(M, C)``); ``None`` where not asked for."""

    losses: FloatArray
    softmax: FloatArray | None = None
    log_softmax: FloatArray | None = None
    grad: FloatArray | None = None
    predictions: IntArray | None = None
    target_probability: FloatArray | None = None


def from_logits(
    problem: ClassScores,
    plan: Coefficients,
    s: np.floating[Any],
    outputs: frozenset[str],
    grad_divisor: np.floating[Any],
    *,
    want_grad: bool,
    spare: FloatArray | None = None,
) -> Parts:
    """Everything from one blocked softmax pass (``kernels.softmax_row_blocks``).

    ``spare`` is ``problem.x`` when it may be overwritten (``scores.spare_x``): the first batch-sized
    output (softmax, log-softmax, gradient) is then written over it, each block once it has been read.

    With ``shifted = x - max`` and ``lse = log(sum(exp(shifted)))``, ``log_softmax = shifted - lse``,
    so ``-lp[i, t] = lse - shifted[i, t]`` and ``-sum_c w_c lp[i, c] = W lse - shifted . w``: the losses
    need ``lse``, the target's shifted logit and (with smoothing or soft targets) one dot product per
    row, never the whole log-softmax array.
    """
    logit_pass = _LogitPass.allocate(problem.x, plan, s, outputs, want_grad=want_grad, spare=spare)
    logit_pass.grad_divisor = grad_divisor
    for_each_row_block(problem.x, logit_pass.consume, want_argmax=logit_pass.predictions is not None)
    return logit_pass.parts("target_probability" in outputs)


@dataclass(slots=True)
class _LogitPass:
    """The arrays one pass over the logits fills, block by block (``consume``)."""

    plan: Coefficients
    s: np.floating[Any]
    lse: FloatArray
    softmax: FloatArray | None
    log_softmax: FloatArray | None
    grad: FloatArray | None
    predictions: NDArray[np.intp] | None
    picked: FloatArray | None  # the target's shifted logit (index targets)
    dots: FloatArray | None  # shifted . w (smoothing) or shifted . a (soft targets)
    smooth_weight: FloatArray
    target_share: FloatArray | None = None  # (1 - s) w[t], for the gradient
    smoothing_share: FloatArray | None = None  # s / C w, for the gradient
    grad_divisor: np.floating[Any] | float = 1.0

    @classmethod
    def allocate(
        cls,
        x: FloatArray,
        plan: Coefficients,
        s: np.floating[Any],
        outputs: frozenset[str],
        *,
        want_grad: bool,
        spare: FloatArray | None = None,
    ) -> _LogitPass:
        rows, classes = x.shape
        dtype = x.dtype.type
        empty = np.empty
        spares = [] if spare is None else [spare]

        def batch_sized() -> FloatArray:
            # A block's rows of x are read (into the pass's scratch) before its outputs are written.
            return spares.pop() if spares else empty(x.shape, dtype)

        indexed = plan.target is not None
        smoothing = indexed and s > 0
        smooth_weight = plan.class_weight if plan.class_weight is not None else np.ones(classes, dtype)
        logit_pass = cls(
            plan=plan,
            s=s,
            lse=empty(rows, dtype),
            softmax=batch_sized() if "softmax" in outputs else None,
            log_softmax=batch_sized() if "log_softmax" in outputs else None,
            grad=batch_sized() if want_grad else None,
            predictions=empty(rows, np.intp) if "predictions" in outputs else None,
            picked=empty(rows, dtype) if indexed else None,
            dots=empty(rows, dtype) if smoothing or plan.soft is not None else None,
            smooth_weight=smooth_weight,
        )
        if want_grad and indexed:
            assert plan.target_weight is not None
            logit_pass.target_share = (1 - s) * plan.target_weight
            logit_pass.smoothing_share = (s / classes) * smooth_weight if smoothing else None
        return logit_pass

    def consume(self, block: RowBlock) -> None:
        span = block.rows
        n = span.stop - span.start
        target, soft = self.plan.target, self.plan.soft
        block_lse = np.log(block.total, out=self.lse[span])
        if self.picked is not None:
            assert target is not None
            self.picked[span] = block.shifted[np.arange(n), target[span]]
        if self.dots is not None:
            self.dots[span] = (
                block.shifted @ self.smooth_weight
                if soft is None
                else np.einsum("ij,ij->i", soft[span], block.shifted)
            )
        if self.predictions is not None:
            self.predictions[span] = block.argmax  # type: ignore[assignment]
        probabilities = None
        if self.softmax is not None:
            probabilities = np.divide(block.exp, block.total[:, None], out=self.softmax[span])
        if self.log_softmax is not None:
            np.subtract(block.shifted, block_lse[:, None], out=self.log_softmax[span])
        if self.grad is not None:
            self._gradient(block, probabilities)

    def _gradient(self, block: RowBlock, probabilities: FloatArray | None) -> None:
        """``softmax * sum_c a_c - a`` for the block's rows, divided by ``grad_divisor``."""
        assert self.grad is not None
        span, plan = block.rows, self.plan
        g = self.grad[span]
        if probabilities is not None:
            np.multiply(probabilities, plan.a_sum[span, None], out=g)
        else:
            np.divide(block.exp, block.total[:, None], out=g)
            g *= plan.a_sum[span, None]
        if plan.soft is not None:
            g -= plan.soft[span]
        else:
            assert plan.target is not None and plan.keep is not None and self.target_share is not None
            if self.smoothing_share is not None:
                g -= self.smoothing_share * plan.keep[span, None]
            g[np.arange(span.stop - span.start), plan.target[span]] -= self.target_share[span]
        if self.grad_divisor != 1:
            g /= self.grad_divisor

    def parts(self, want_target_probability: bool) -> Parts:
        plan, s, lse = self.plan, self.s, self.lse
        target_probability = None
        if plan.soft is not None:
            assert self.dots is not None
            losses = plan.a_sum * lse - self.dots
        else:
            assert self.picked is not None and plan.target_weight is not None and plan.keep is not None
            losses = (1 - s) * plan.target_weight * (lse - self.picked)
            if s > 0:
                assert self.dots is not None
                classes = self.smooth_weight.shape[0]
                # np.where, not a product with keep: an ignored row's term may overflow (inf * 0 is NaN).
                losses += (s / classes) * np.where(plan.keep, plan.class_weight_total * lse - self.dots, 0)
            if want_target_probability:
                target_probability = np.where(plan.keep, np.exp(self.picked - lse), np.nan)
        return Parts(losses, self.softmax, self.log_softmax, self.grad, self.predictions, target_probability)


def from_distribution(
    problem: ClassScores,
    plan: Coefficients,
    s: np.floating[Any],
    input_kind: InputKind,
    epsilon: np.floating[Any],
    outputs: frozenset[str],
    grad_divisor: np.floating[Any],
    *,
    want_grad: bool,
) -> Parts:
    """Probabilities (``lp = log(clip(p, epsilon, 1))``) or log-probabilities (``lp`` as given)."""
    x = problem.x
    rows, classes = x.shape
    dtype = x.dtype.type
    if input_kind == "probabilities":
        q = x
        log_q = np.log(np.clip(x, epsilon, dtype(1)))
    else:
        log_q = x
        q = np.exp(x)
    if plan.soft is not None:
        losses = -np.einsum("ij,ij->i", plan.soft, log_q)
        a = plan.soft
    else:
        assert plan.target is not None and plan.keep is not None and plan.target_weight is not None
        picked = log_q[np.arange(rows), plan.target]
        losses = -(1 - s) * plan.target_weight * picked
        if s > 0:
            weight = plan.class_weight
            smooth = log_q @ weight if weight is not None else np.add.reduce(log_q, axis=1)
            losses -= (s / classes) * np.where(plan.keep, smooth, 0)  # an ignored row's may overflow
        losses = np.where(plan.keep, losses, dtype(0))
        a = np.zeros(x.shape, dtype)
        if s > 0:
            a += (s / classes) * (plan.class_weight if plan.class_weight is not None else dtype(1))
            a *= plan.keep[:, None]
        a[np.arange(rows), plan.target] += (1 - s) * plan.target_weight
    grad = None
    if want_grad:
        if input_kind == "probabilities":
            # d/dp log(clip(p, eps, 1)) is 1/p inside the clip, bounds included (torch.clamp), else 0.
            inside = x >= epsilon
            grad = np.where(inside, -a / np.where(inside, x, dtype(1)), dtype(0)).astype(dtype, copy=False)
        else:
            grad = -a
        if grad_divisor != 1:
            grad /= grad_divisor
    target_probability = None
    if "target_probability" in outputs and plan.target is not None and plan.keep is not None:
        target_probability = np.where(plan.keep, q[np.arange(rows), plan.target], np.nan)
    predictions = np.argmax(x, axis=1) if "predictions" in outputs else None
    return Parts(
        losses,
        q if "softmax" in outputs else None,
        log_q if "log_softmax" in outputs else None,
        grad,
        predictions,
        target_probability,
    )

"""Evaluation metrics computed from the same predictions as a loss, each as the library that defines it.

Every metric is a weighted mean over the counted samples. With index targets ``t_i``,
``m_i = [t_i != ignore_index]`` and sample weights ``v_i`` (ones when absent), sample ``i`` weighs
``u_i = m_i * v_i`` and ``U = sum_i u_i``; class weights do not enter any metric (scikit-learn's and
torchmetrics' metrics have none). With ``p`` the class distribution ``(M, C)`` the loss used:

* ``accuracy = sum_i u_i [argmax_c p[i, c] == t_i] / U`` (argmax: the first class on ties, as
  ``predictions``), scikit-learn's ``accuracy_score(sample_weight=)``.
* ``top_k_accuracy = sum_i u_i [t_i among the k highest of p[i]] / U``; ties are ranked as
  scikit-learn's ``top_k_accuracy_score`` ranks them: a stable sort, reversed, so that among equal
  probabilities the higher class index ranks first.
* ``brier_score = sum_i u_i sum_c (p[i, c] - [c == t_i])^2 / U``, scikit-learn's multi-class
  ``brier_score_loss`` (no halving).
* ``entropy_i = -sum_c p[i, c] log p[i, c]`` (``0 log 0 = 0``), in nats, for every sample.
* ``calibration``: torchmetrics' ``MulticlassCalibrationError(norm="l1")`` binning. A sample's
  confidence ``max_c p[i, c]`` falls in bin ``b = #{k : e_k <= conf} - 1`` for the edges
  ``e_k = k / B`` (``k = 0..B``): bins ``[k/B, (k+1)/B)`` and a last bin holding confidences of exactly
  1 (``torch.bucketize(right=True) - 1``), so ``B + 1`` bins. Per bin: ``count`` (samples),
  ``weight`` (``sum u_i``), ``confidence_sum`` (``sum u_i conf_i``), ``correct_weight``
  (``sum u_i [correct_i]``), and their ratios ``confidence`` and ``accuracy`` (null in an empty bin).
  ``ece = sum_b |correct_weight_b - confidence_sum_b| / U``. The sums are what a client adds up to
  combine chunks exactly.

Each is ``None`` when ``U`` is 0 (every target ignored or weighed 0), as the undefined mean loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.core.softmax import FloatArray

__all__ = [
    "Calibration",
    "accuracy",
    "brier_score",
    "calibration",
    "entropy",
    "threshold_accuracy",
    "top_k_accuracy",
    "weighted_mean",
]

IntArray = NDArray[np.integer[Any]]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Expected calibration error and its reliability diagram (``B + 1`` bins; see the module)."""

    ece: np.floating[Any] | None
    edges: FloatArray
    count: NDArray[np.int64]
    weight: FloatArray
    confidence_sum: FloatArray
    correct_weight: FloatArray
    confidence: FloatArray
    accuracy: FloatArray

    def as_dict(self) -> dict[str, Any]:
        """The response's ``calibration`` object (NaN, an empty bin's mean, is written as null)."""
        return {
            "ece": self.ece,
            "bins": len(self.edges) - 1,
            "edges": self.edges,
            "count": self.count,
            "weight": self.weight,
            "confidence_sum": self.confidence_sum,
            "correct_weight": self.correct_weight,
            "confidence": self.confidence,
            "accuracy": self.accuracy,
        }


def weighted_mean(values: FloatArray, weights: FloatArray) -> np.floating[Any] | None:
    """``sum(w * values) / sum(w)``, or ``None`` when the weights sum to 0 (an undefined mean).

    >>> float(weighted_mean(np.array([1.0, 0.0]), np.array([3.0, 1.0])))
    0.75
    """
    with np.errstate(over="ignore", invalid="ignore"):  # weights whose sums overflow: the caller refuses
        total = np.add.reduce(weights, axis=None)
        if not total > 0:
            return None
        mean: np.floating[Any] = np.add.reduce(weights * values, axis=None) / total
    # A total that overflowed would make any mean 0 or NaN: NaN, which the caller refuses as overflow.
    return mean if np.isfinite(total) else total.dtype.type(np.nan)


def accuracy(p: FloatArray, target: IntArray, u: FloatArray) -> np.floating[Any] | None:
    """Weighted top-1 accuracy; ``p`` is ``(M, C)``, ``target`` and ``u`` are ``(M,)``."""
    correct = np.argmax(p, axis=1) == target
    return weighted_mean(correct.astype(p.dtype), u)


def top_k_accuracy(p: FloatArray, target: IntArray, u: FloatArray, k: int) -> np.floating[Any] | None:
    """Weighted top-``k`` accuracy, ties ranked as scikit-learn's (stable sort reversed: among equal
    probabilities the higher class index first); ``k >= C`` counts every sample. O(C) per row.

    >>> p, one = np.array([[0.4, 0.4, 0.2]]), np.ones(1)
    >>> [float(top_k_accuracy(p, np.array([t]), one, 1)) for t in (0, 1)]
    [0.0, 1.0]
    """
    # The target's place in that order, without sorting: the classes above it are those more probable,
    # and the equally probable ones of a higher index.
    rows = np.arange(p.shape[0])
    p_target = p[rows, target][:, None]
    above = np.count_nonzero(p > p_target, axis=1)
    above += np.count_nonzero((p == p_target) & (np.arange(p.shape[1]) > target[:, None]), axis=1)
    return weighted_mean((above < k).astype(p.dtype), u)


def brier_score(p: FloatArray, target: IntArray, u: FloatArray) -> np.floating[Any] | None:
    """Weighted multi-class Brier score: ``sum_c (p_c - onehot_c)^2`` per sample, averaged.

    Computed as ``sum_c p_c^2 - 2 p_t + 1`` would cancel for confident rows; the difference is formed
    instead, one row of ``C`` numbers at a time in NumPy.
    """
    diff = p.copy()
    diff[np.arange(p.shape[0]), target] -= 1
    return weighted_mean(np.einsum("ij,ij->i", diff, diff), u)


def entropy(p: FloatArray, log_p: FloatArray | None = None) -> FloatArray:
    """``H_i = -sum_c p[i, c] log p[i, c]`` in nats, ``0 log 0 = 0``; ``log_p`` (log-softmax) when known,
    which stays exact where ``p`` underflows.

    >>> entropy(np.array([[0.5, 0.5, 0.0]])).round(6).tolist()
    [0.693147]
    """
    if log_p is None:  # probabilities as given: 0 log 0 is 0, not 0 * -inf
        with np.errstate(divide="ignore"):
            log_p = np.where(p > 0, np.log(p), p.dtype.type(0))
    # A finite log-softmax needs no mask: where p underflows to 0, p * log p is 0 already.
    result: FloatArray = -np.einsum("ij,ij->i", p, log_p)
    return np.maximum(result, p.dtype.type(0))  # a row of one 1 gives -0.0; rounding may give -1e-17


def calibration(p: FloatArray, target: IntArray, u: FloatArray, bins: int) -> Calibration:
    """Binned calibration of the top-1 confidence (torchmetrics' edges and bucketing; see the module)."""
    keep = u > 0
    top = np.argmax(p, axis=1)
    confidence = p[np.arange(p.shape[0]), top][keep]
    correct = (top == target)[keep]
    weights = u[keep].astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges, confidence, side="right") - 1
    size = bins + 1
    count = np.bincount(index, minlength=size).astype(np.int64)
    weight = np.bincount(index, weights=weights, minlength=size).astype(np.float64, copy=False)
    confidence_sum = np.bincount(index, weights=weights * confidence, minlength=size).astype(np.float64)
    correct_weight = np.bincount(index, weights=weights * correct, minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.where(weight > 0, confidence_sum / weight, np.nan)
        mean_accuracy = np.where(weight > 0, correct_weight / weight, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # as weighted_mean
        total = np.add.reduce(weight)
        ece = np.add.reduce(np.abs(correct_weight - confidence_sum)) / total if total > 0 else None
    if ece is not None and not np.isfinite(total):
        ece = total.dtype.type(np.nan)  # refused by the caller as overflow
    return Calibration(
        ece, edges, count, weight, confidence_sum, correct_weight, mean_confidence, mean_accuracy
    )


def threshold_accuracy(
    p: FloatArray, y: FloatArray, u: FloatArray, threshold: float
) -> np.floating[Any] | None:
    """Binary accuracy: ``[p > threshold] == [y >= 0.5]`` per element, weighted by ``u``: torchmetrics'
    ``BinaryAccuracy(threshold)`` (a strict ``>``); soft targets count as their rounding up at 0.5.

    >>> float(threshold_accuracy(np.array([0.5, 0.7]), np.array([0.0, 1.0]), np.ones(2), 0.5))
    1.0
    """
    correct = (p > threshold) == (y >= 0.5)
    return weighted_mean(correct.astype(p.dtype), u)

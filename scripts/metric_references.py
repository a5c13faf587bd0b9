"""The metrics' and sample weights' reference cases (``tests/data/metric_cases.json``), computed by the
libraries that define them; written and checked by ``scripts/make_reference_cases.py``.

Each case is a /v1 request and the fields the libraries give for it:

* scikit-learn 1.9: ``log_loss(sample_weight=)``, ``accuracy_score``, ``top_k_accuracy_score`` (ties
  included), ``brier_score_loss`` (multi-class and binary);
* torchmetrics 1.9: ``MulticlassCalibrationError(norm="l1")``, ``Perplexity``, ``BinaryAccuracy``
  (its results are float32, hence float32's tolerance for those cases);
* PyTorch 2.13: the loss and gradient with class and sample weights together (autograd of
  ``sum_i v_i l_i / sum_i v_i w[t_i]``), and the entropy (``torch.special.entr``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
import torch
import torch.nn.functional as F  # noqa: N812
import torchmetrics
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score
from torchmetrics.classification import BinaryAccuracy, MulticlassCalibrationError
from torchmetrics.text import Perplexity

__all__ = ["build_metric_cases"]

Json = dict[str, Any]
FLOAT64 = (1e-9, 1e-12)
#: torchmetrics' results are float32.
FLOAT32 = (1e-5, 1e-6)


def _softmax(x: np.ndarray[Any, Any], axis: int = 1) -> np.ndarray[Any, Any]:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)  # type: ignore[no-any-return]


def _case(
    name: str, endpoint: str, request: Json, expected: Json, tolerance: tuple[float, float], note: str
) -> Json:
    rtol, atol = tolerance
    return {
        "name": name,
        "endpoint": endpoint,
        "request": request,
        "expected": expected,
        "rtol": rtol,
        "atol": atol,
        "note": note,
    }


def _scikit_learn_cases(rng: np.random.Generator) -> list[Json]:
    p = _softmax(rng.normal(0, 2, (24, 4)))
    p[:4] = [[0.25, 0.25, 0.25, 0.25], [0.4, 0.4, 0.1, 0.1], [0.1, 0.3, 0.3, 0.3], [0.5, 0.5, 0.0, 0.0]]
    target = rng.integers(0, 4, 24)
    v = np.round(rng.uniform(0, 3, 24), 3)
    labels = [0, 1, 2, 3]
    request = {
        "probabilities": p.tolist(),
        "target": target.tolist(),
        "sample_weight": v.tolist(),
        "top_k": 2,
        "outputs": ["accuracy", "top_k_accuracy", "brier_score"],
    }
    expected = {
        "loss": log_loss(target, p, sample_weight=v, labels=labels),
        "accuracy": accuracy_score(target, p.argmax(1), sample_weight=v),
        "top_k_accuracy": top_k_accuracy_score(target, p, k=2, sample_weight=v, labels=labels),
        "brier_score": brier_score_loss(target, p, sample_weight=v, labels=labels),
    }
    y = rng.integers(0, 2, 30)
    q = np.round(rng.uniform(0.01, 0.99, 30), 4)
    w = np.round(rng.uniform(0, 2, 30), 3)
    binary = {"probabilities": q.tolist(), "target": y.tolist(), "sample_weight": w.tolist()}
    binary["outputs"] = ["accuracy", "brier_score"]
    binary_expected = {
        "loss": log_loss(y, q, sample_weight=w),
        "accuracy": accuracy_score(y, q > 0.5, sample_weight=w),
        "brier_score": brier_score_loss(y, q, sample_weight=w),
    }
    return [
        _case(
            "sklearn_weighted_probabilities_with_ties",
            "/v1/cross-entropy",
            request,
            expected,
            FLOAT64,
            "scikit-learn log_loss, accuracy_score, top_k_accuracy_score (tied rows first), brier_score_loss",
        ),
        _case(
            "sklearn_binary_weighted",
            "/v1/binary-cross-entropy",
            binary,
            binary_expected,
            FLOAT64,
            "scikit-learn log_loss, accuracy_score, brier_score_loss with sample_weight",
        ),
    ]


def _torch_weighted_case(rng: np.random.Generator) -> Json:
    logits = np.round(rng.normal(0, 2, (12, 5)), 4)
    target = rng.integers(0, 5, 12)
    target[[2, 7]] = -100
    v = np.round(rng.uniform(0, 2, 12), 3)
    w = [0.5, 2.0, 1.0, 3.0, 0.25]
    class_weight = torch.tensor(w, dtype=torch.float64)
    request = {
        "logits": logits.tolist(),
        "target": target.tolist(),
        "weight": w,
        "sample_weight": v.tolist(),
        "label_smoothing": 0.1,
        "outputs": ["losses", "grad", "perplexity"],
    }
    x = torch.tensor(logits, requires_grad=True)
    t = torch.tensor(target)
    losses = F.cross_entropy(x, t, weight=class_weight, reduction="none", label_smoothing=0.1)
    kept = t != -100
    tw = torch.where(kept, class_weight[t.clamp(min=0)], 0)
    loss = (torch.tensor(v) * losses).sum() / (torch.tensor(v) * tw).sum()
    (grad,) = torch.autograd.grad(loss, x)
    expected = {
        "loss": loss.item(),
        "losses": losses.detach().numpy().tolist(),
        "grad": grad.numpy().tolist(),
        "perplexity": float(np.exp(loss.item())),
    }
    note = "PyTorch: sum_i v_i l_i / sum_i v_i w[t_i] with class weights, smoothing and ignored targets"
    return _case("torch_sample_and_class_weights", "/v1/cross-entropy", request, expected, FLOAT64, note)


def _torchmetrics_cases(rng: np.random.Generator) -> list[Json]:
    logits = np.round(rng.normal(0, 2, (60, 4)), 4)
    target = rng.integers(0, 4, 60)
    target[:5] = -100
    ece = MulticlassCalibrationError(num_classes=4, n_bins=10, norm="l1", ignore_index=-100)
    calibration = {
        "logits": logits.tolist(),
        "target": target.tolist(),
        "calibration_bins": 10,
        "outputs": ["calibration"],
    }
    value = ece(torch.tensor(logits), torch.tensor(target)).item()
    sequences = np.round(rng.normal(0, 1, (3, 7, 6)), 4)  # torchmetrics: (N, seq, vocab)
    tokens = rng.integers(0, 6, (3, 7))
    tokens[1, 4:] = -100
    perplexity = Perplexity(ignore_index=-100)(torch.tensor(sequences), torch.tensor(tokens)).item()
    k_dim = {
        "logits": np.transpose(sequences, (0, 2, 1)).tolist(),
        "target": tokens.tolist(),
        "outputs": ["perplexity", "entropy"],
    }
    entropy = torch.special.entr(torch.softmax(torch.tensor(sequences), dim=2)).sum(dim=2)
    p = np.round(rng.uniform(0, 1, 40), 4)
    y = rng.integers(0, 2, 40)
    binary = {"probabilities": p.tolist(), "target": y.tolist(), "threshold": 0.3, "outputs": ["accuracy"]}
    accuracy = BinaryAccuracy(threshold=0.3)(torch.tensor(p), torch.tensor(y)).item()
    return [
        _case(
            "torchmetrics_calibration_10_bins",
            "/v1/cross-entropy",
            calibration,
            {"calibration": {"ece": value}},
            FLOAT32,
            "torchmetrics MulticlassCalibrationError(n_bins=10, norm='l1', ignore_index=-100)",
        ),
        _case(
            "torchmetrics_perplexity_k_dimensional",
            "/v1/cross-entropy",
            k_dim,
            {"perplexity": perplexity, "entropy": entropy.numpy().tolist()},
            FLOAT32,
            "torchmetrics Perplexity(ignore_index=-100) over (N, seq, vocab); entropy by torch.special.entr",
        ),
        _case(
            "torchmetrics_binary_accuracy_threshold",
            "/v1/binary-cross-entropy",
            binary,
            {"accuracy": accuracy},
            FLOAT32,
            "torchmetrics BinaryAccuracy(threshold=0.3): probability > 0.3 predicts 1",
        ),
    ]


def build_metric_cases() -> Json:
    rng = np.random.default_rng(17)
    cases = [*_scikit_learn_cases(rng), _torch_weighted_case(rng), *_torchmetrics_cases(rng)]
    versions = f"scikit-learn {sklearn.__version__}, torchmetrics {torchmetrics.__version__}"
    versions += f", torch {torch.__version__}"
    return {"version": 1, "generated_with": versions, "cases": cases}

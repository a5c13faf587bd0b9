"""``evaluate`` with sample weights and metrics: many requests give what one request gives, and what
scikit-learn and torchmetrics give over the whole input (counts and sums combined, never averages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score
from torchmetrics.classification import MulticlassCalibrationError

from tests.live import LiveServer
from xent_client import Client, XentError

ROWS, CLASSES = 3000, 6
METRICS = ["accuracy", "top_k_accuracy", "perplexity", "entropy", "brier_score", "calibration"]


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(17)
    logits = rng.normal(scale=2, size=(ROWS, CLASSES))
    target = rng.integers(0, CLASSES, ROWS)
    target[rng.random(ROWS) < 0.1] = -100
    return {
        "logits": logits,
        "target": target,
        "v": rng.uniform(0, 3, ROWS),
        "w": rng.uniform(0.2, 3, CLASSES),
    }


def test_many_requests_give_the_single_requests_metrics(client: Client, data: dict[str, Any]) -> None:
    logits, target, v, w = data["logits"], data["target"], data["v"], data["w"]
    options: dict[str, Any] = {"weight": w, "sample_weight": v, "top_k": 2, "calibration_bins": 10}
    many = client.evaluate(
        logits, target, request_bytes=60_000, metrics=METRICS, return_losses=True, **options
    )
    assert many.requests >= 5 and many.rows == ROWS
    one = client.evaluate(logits, target, request_bytes=64 * 1024 * 1024, metrics=METRICS, **options)
    assert one.requests == 1
    for name in ("loss", "accuracy", "top_k_accuracy", "perplexity", "brier_score"):
        assert getattr(many, name) == pytest.approx(getattr(one, name), rel=1e-13), name
    assert many.calibration is not None and one.calibration is not None
    np.testing.assert_array_equal(many.calibration["count"], one.calibration["count"])
    np.testing.assert_allclose(many.calibration["weight"], one.calibration["weight"], rtol=1e-13)
    assert many.calibration["ece"] == pytest.approx(one.calibration["ece"], rel=1e-12)
    assert many.entropy is not None and one.entropy is not None and many.entropy.shape == (ROWS,)
    np.testing.assert_allclose(many.entropy, one.entropy, rtol=1e-14)


def test_evaluate_equals_the_libraries_over_the_whole_input(client: Client, data: dict[str, Any]) -> None:
    logits, target, v = data["logits"], data["target"], data["v"]
    result = client.evaluate(logits, target, sample_weight=v, request_bytes=50_000, metrics=METRICS, top_k=3)
    assert result.requests > 1
    kept = target != -100
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y, pk, vk, labels = target[kept], p[kept], v[kept], list(range(CLASSES))
    assert result.loss == pytest.approx(log_loss(y, pk, sample_weight=vk, labels=labels), rel=1e-12)
    assert result.perplexity == pytest.approx(
        np.exp(log_loss(y, pk, sample_weight=vk, labels=labels)), rel=1e-12
    )
    assert result.accuracy == pytest.approx(accuracy_score(y, pk.argmax(1), sample_weight=vk), rel=1e-12)
    top3 = top_k_accuracy_score(y, pk, k=3, sample_weight=vk, labels=labels)
    assert result.top_k_accuracy == pytest.approx(top3, rel=1e-12)
    brier = brier_score_loss(y, pk, sample_weight=vk, labels=labels)
    assert result.brier_score == pytest.approx(brier, rel=1e-12)
    unweighted = client.evaluate(logits, target, request_bytes=50_000, metrics=["calibration"])
    metric = MulticlassCalibrationError(num_classes=CLASSES, n_bins=15, norm="l1", ignore_index=-100)
    expected = metric(torch.tensor(logits), torch.tensor(target)).item()
    assert unweighted.calibration is not None
    assert unweighted.calibration["ece"] == pytest.approx(expected, rel=1e-6)  # torchmetrics: float32


def test_unknown_metrics_and_weights_of_batches_are_refused(client: Client, data: dict[str, Any]) -> None:
    with pytest.raises(XentError, match="unknown metrics"):
        client.evaluate(data["logits"], data["target"], metrics=["recall"])
    batches = [(data["logits"][:10], data["target"][:10])]
    with pytest.raises(XentError, match="sample_weight needs an array input"):
        client.evaluate(batches, sample_weight=np.ones(10))


def test_sample_weights_over_binary_tensors_give_scikit_learns_log_loss(
    client: Client, data: dict[str, Any]
) -> None:
    logits, target, v = data["logits"], data["target"], data["v"]
    result = client.evaluate(logits, target, sample_weight=v, request_bytes=40_000, transport="binary")
    assert result.requests > 1
    kept = target != -100
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = log_loss(target[kept], p[kept], sample_weight=v[kept], labels=list(range(CLASSES)))
    assert result.loss == pytest.approx(expected, rel=1e-12)


def test_one_call_with_metrics_from_the_client(client: Client, data: dict[str, Any]) -> None:
    logits, target, v = data["logits"][:200], data["target"][:200], data["v"][:200]
    answer = client.cross_entropy(
        logits=logits,
        target=target,
        sample_weight=v,
        top_k=2,
        calibration_bins=5,
        outputs=["losses", *METRICS],
    )
    evaluated = client.evaluate(logits, target, sample_weight=v, top_k=2, calibration_bins=5, metrics=METRICS)
    for name in ("loss", "accuracy", "top_k_accuracy", "perplexity", "brier_score"):
        assert getattr(answer, name) == pytest.approx(getattr(evaluated, name), rel=1e-13), name
    assert answer.calibration is not None and len(answer.calibration["count"]) == 6
    assert isinstance(answer.entropy, np.ndarray) and answer.entropy.shape == (200,)
    with pytest.raises(XentError, match="/v1 outputs"):
        client.cross_entropy(logits=logits, target=target, outputs=["accuracy"], transport="binary")
    binary = client.binary_cross_entropy(
        logits=logits[:, 0], target=(target[:200] > 2).astype(float), sample_weight=v, threshold=0.4,
        outputs=["accuracy", "brier_score"],
    )  # fmt: skip
    assert binary.accuracy is not None and 0 <= binary.accuracy <= 1 and binary.brier_score is not None

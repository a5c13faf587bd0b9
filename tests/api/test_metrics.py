"""Sample weights and the metrics over HTTP: /v1/cross-entropy, /v1/binary-cross-entropy and /v2."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from service.api.schemas import BinaryCrossEntropyResponse, CrossEntropyResponse
from service.core import binary_cross_entropy, cross_entropy
from service.core.vocabulary import CROSS_ENTROPY_METRICS

pytestmark = pytest.mark.anyio

LOGITS = [[-1, 0.5, 2], [-1, 0.5, 3], [2, 1, 0], [0.3, 0.2, 0.1]]
TARGET = [1, 2, 0, -100]
SAMPLE_WEIGHT = [1.0, 2.0, 0.5, 3.0]


async def _post(client: httpx.AsyncClient, path: str, body: Any, status: int = 200) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data: dict[str, Any] = response.json()
    return data


async def test_one_call_gives_loss_losses_and_every_metric_as_the_core(client: httpx.AsyncClient) -> None:
    outputs = ["losses", *CROSS_ENTROPY_METRICS]
    body = {
        "logits": LOGITS,
        "target": TARGET,
        "sample_weight": SAMPLE_WEIGHT,
        "top_k": 2,
        "outputs": outputs,
    }
    data = await _post(client, "/v1/cross-entropy", body)
    CrossEntropyResponse.model_validate(data)
    core = cross_entropy(
        np.array(LOGITS, dtype=float),
        np.array(TARGET),
        sample_weight=np.array(SAMPLE_WEIGHT),
        top_k=2,
        outputs=outputs,  # type: ignore[arg-type]
    )
    assert data["loss"] == float(core.loss)  # type: ignore[arg-type]
    # the weighted mean: (1 * l0 + 2 * l1 + 0.5 * l2) / 3.5 (the ignored target weighs nothing)
    losses = data["losses"]
    assert data["loss"] == pytest.approx((losses[0] + 2 * losses[1] + 0.5 * losses[2]) / 3.5, rel=1e-15)
    assert data["accuracy"] == pytest.approx((2 + 0.5) / 3.5)  # sample 0 predicts 2, not 1
    assert data["top_k_accuracy"] == 1.0
    assert data["perplexity"] == pytest.approx(np.exp(data["loss"]), rel=1e-15)
    assert len(data["entropy"]) == 4 and all(0 < h < np.log(3) for h in data["entropy"])
    assert data["brier_score"] == float(core.brier_score)  # type: ignore[arg-type]
    calibration = data["calibration"]
    assert calibration["bins"] == 15 and sum(calibration["count"]) == 3
    assert sum(calibration["weight"]) == 3.5
    assert calibration["confidence"].count(None) == 16 - sum(1 for c in calibration["count"] if c)


async def test_metrics_are_sent_only_when_asked(client: httpx.AsyncClient) -> None:
    data = await _post(client, "/v1/cross-entropy", {"logits": LOGITS, "target": TARGET})
    assert set(data) == {"loss", "count", "losses", "softmax"}


async def test_an_undefined_metric_is_null(client: httpx.AsyncClient) -> None:
    body = {"logits": LOGITS, "target": [-100] * 4, "outputs": ["accuracy", "perplexity", "calibration"]}
    data = await _post(client, "/v1/cross-entropy", body)
    assert data["loss"] is None and data["accuracy"] is None and data["perplexity"] is None
    assert data["calibration"]["ece"] is None and sum(data["calibration"]["count"]) == 0


@pytest.mark.parametrize(
    ("fields", "loc", "fragment"),
    [
        ({"sample_weight": [1, 2]}, ["sample_weight"], "needs one weight per sample"),
        ({"sample_weight": [1, -2, 1, 1]}, ["sample_weight", 1], "is negative"),
        ({"top_k": 0, "outputs": ["top_k_accuracy"]}, ["top_k"], "top_k = 0"),
        ({"calibration_bins": 0, "outputs": ["calibration"]}, ["calibration_bins"], "calibration_bins = 0"),
        ({"outputs": ["recall"]}, ["outputs", 0], "Input should be"),
    ],
)
async def test_bad_metric_requests_get_a_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, Any], loc: list[Any], fragment: str
) -> None:
    body = {"logits": LOGITS, "target": TARGET, **fields}
    problem = await _post(client, "/v1/cross-entropy", body, status=422)
    assert problem["type"] == "/problems/invalid-input"
    assert any(error["loc"] == loc and fragment in error["msg"] for error in problem["errors"]), problem


async def test_index_metrics_with_soft_targets_get_a_422(client: httpx.AsyncClient) -> None:
    body = {"logits": [[0.0, 1.0]], "target": [[0.5, 0.5]], "outputs": ["accuracy"]}
    problem = await _post(client, "/v1/cross-entropy", body, status=422)
    assert "needs index targets" in problem["detail"]


async def test_binary_sample_weights_and_metrics(client: httpx.AsyncClient) -> None:
    logits = [[1.2, -0.8, 0.3], [-1.5, 2.0, 0.0]]
    target = [[1, 0, 1], [0, 1, 0]]
    body = {
        "logits": logits,
        "target": target,
        "sample_weight": [2, 1],
        "threshold": 0.55,
        "outputs": ["losses", "accuracy", "brier_score"],
    }
    data = await _post(client, "/v1/binary-cross-entropy", body)
    BinaryCrossEntropyResponse.model_validate(data)
    losses = np.array(data["losses"])
    assert data["loss"] == pytest.approx((2 * losses[0].sum() + losses[1].sum()) / 9, rel=1e-15)
    # sigmoid(0.3) = 0.574 > 0.55 predicts 1 (right); sigmoid(0) = 0.5 predicts 0 (right): all correct
    assert data["accuracy"] == 1.0
    core = binary_cross_entropy(
        np.array(logits, dtype=float),
        np.array(target, dtype=float),
        sample_weight=np.array([2.0, 1.0]),
        outputs=["brier_score"],
    )
    assert data["brier_score"] == float(core.brier_score)  # type: ignore[arg-type]


async def test_v2_takes_sample_weight_as_an_input(client: httpx.AsyncClient) -> None:
    def tensor(name: str, datatype: str, values: list[Any]) -> dict[str, Any]:
        array = np.array(values)
        return {
            "name": name,
            "datatype": datatype,
            "shape": list(array.shape),
            "data": array.ravel().tolist(),
        }

    body = {
        "inputs": [
            tensor("logits", "FP64", LOGITS),
            tensor("target", "INT64", TARGET),
            tensor("sample_weight", "FP64", SAMPLE_WEIGHT),
        ]
    }
    response = await client.post("/v2/models/cross_entropy/infer", json=body)
    assert response.status_code == 200, response.text
    loss = next(out for out in response.json()["outputs"] if out["name"] == "loss")["data"][0]
    v1 = await _post(
        client, "/v1/cross-entropy", {"logits": LOGITS, "target": TARGET, "sample_weight": SAMPLE_WEIGHT}
    )
    assert loss == v1["loss"]

"""POST /v1/binary-cross-entropy, /v1/softmax and /v1/divergence over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.anyio

FASHION_Q = [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]


async def _ok(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data: dict[str, Any] = response.json()
    return data


async def test_divergence_of_the_seed_example(client: httpx.AsyncClient) -> None:
    data = await _ok(client, "/v1/divergence", {"p": [[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]], "q": [FASHION_Q]})
    assert round(data["cross_entropy"], 4) == 2.4361
    assert data["entropy"] == 0.0
    assert data["entropies"] == [0.0] and str(data["entropies"][0]) == "0.0"
    assert data["kl_divergence"] == pytest.approx(data["cross_entropy"], rel=1e-15)
    assert [round(v, 4) for v in data["cross_entropies"]] == [2.4361]


async def test_divergence_of_one_distribution_gives_scalars(client: httpx.AsyncClient) -> None:
    data = await _ok(
        client,
        "/v1/divergence",
        {"p": [0.5, 0.0, 0.5], "q": [0.25, 0.25, 0.5], "base": "2", "reduction": "none"},
    )
    assert data == {
        "cross_entropy": None,
        "entropy": None,
        "kl_divergence": None,
        "cross_entropies": 1.5,
        "entropies": 1.0,
        "kl_divergences": 0.5,
    }


async def test_softmax_of_the_seed_logits(client: httpx.AsyncClient) -> None:
    data = await _ok(client, "/v1/softmax", {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]]})
    assert np.round(data["softmax"], 4).tolist() == [[0.0391, 0.1753, 0.7856], [0.0166, 0.0746, 0.9088]]
    np.testing.assert_allclose(np.exp(data["log_softmax"]), data["softmax"], rtol=1e-12)


async def test_softmax_dim_and_temperature(client: httpx.AsyncClient) -> None:
    logits = [[1.0, 2.0], [3.0, 5.0]]
    by_columns = await _ok(client, "/v1/softmax", {"logits": logits, "dim": 0, "temperature": 2.0})
    np.testing.assert_allclose(np.sum(by_columns["softmax"], axis=0), [1.0, 1.0])
    np.testing.assert_allclose(by_columns["softmax"][1][0], 1 / (1 + np.exp(-1.0)), rtol=1e-15)


async def test_bce_seed_like_multi_label(client: httpx.AsyncClient) -> None:
    data = await _ok(
        client,
        "/v1/binary-cross-entropy",
        {
            "logits": [[0.0, 2.0]],
            "target": [[1, 0]],
            "outputs": ["losses", "sigmoid", "grad", "predictions"],
        },
    )
    np.testing.assert_allclose(data["losses"], [[np.log(2), np.log1p(np.exp(2.0))]], rtol=1e-15)
    assert data["predictions"] == [[1, 1]]
    assert data["count"] == 2
    np.testing.assert_allclose(data["grad"], [[(0.5 - 1) / 2, (1 / (1 + np.exp(-2.0))) / 2]], rtol=1e-15)


async def test_bce_probabilities_and_labels_alias(client: httpx.AsyncClient) -> None:
    data = await _ok(
        client,
        "/v1/binary-cross-entropy",
        {"probabilities": [0.0, 0.5], "labels": [1, 1], "reduction": "none"},
    )
    assert data["loss"] is None
    np.testing.assert_allclose(data["losses"], [-np.log(np.finfo(float).eps), np.log(2)], rtol=1e-15)
    assert data["sigmoid"] == [np.finfo(float).eps, 0.5]

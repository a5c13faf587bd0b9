"""A large /v2 JSON request, read through the large-body path (``service.api.v2.json_data``), answers
exactly as /v1 does for the same batch."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest

from service.api.bulk_json import BULK_MIN_BODY_BYTES

pytestmark = pytest.mark.anyio


async def test_a_large_v2_json_request_answers_as_v1(client: httpx.AsyncClient) -> None:
    rng = np.random.default_rng(18)
    logits, target = rng.normal(size=(900, 100)).round(6), rng.integers(0, 100, 900)
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "logits", "datatype": "FP64", "shape": [900, 100], "data": logits.ravel().tolist()},
                {"name": "target", "datatype": "INT64", "shape": [900], "data": target.tolist()},
            ],
            "outputs": [{"name": "loss"}, {"name": "losses"}, {"name": "softmax"}],
        }
    )
    assert len(body) >= BULK_MIN_BODY_BYTES
    v2 = await client.post(
        "/v2/models/cross_entropy/infer", content=body, headers={"content-type": "application/json"}
    )
    v1 = await client.post("/v1/cross-entropy", json={"logits": logits.tolist(), "target": target.tolist()})
    assert v2.status_code == v1.status_code == 200, v2.text
    outputs = {output["name"]: output for output in v2.json()["outputs"]}
    assert outputs["loss"]["data"] == [v1.json()["loss"]]
    assert outputs["losses"]["data"] == v1.json()["losses"]
    assert outputs["softmax"]["shape"] == [900, 100]
    assert outputs["softmax"]["data"] == np.array(v1.json()["softmax"]).ravel().tolist()

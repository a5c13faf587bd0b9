"""POST /v1/focal-loss over HTTP (in process): the documented examples answer as the core does, and bad
requests get a 422 problem naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from service.api.routes.focal_loss import EXAMPLES, FocalLossResponse
from service.core.focal import focal_loss

pytestmark = pytest.mark.anyio


async def _post(client: httpx.AsyncClient, body: Any, status: int = 200) -> dict[str, Any]:
    response = await client.post("/v1/focal-loss", json=body)
    assert response.status_code == status, response.text
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_each_example_answers_as_the_core(client: httpx.AsyncClient, name: str) -> None:
    request = EXAMPLES[name]["value"]
    data = await _post(client, request)
    FocalLossResponse.model_validate(data)  # the documented schema holds
    alpha = request.get("alpha")
    want = focal_loss(
        np.array(request["logits"], dtype=np.float64),
        np.array(request["target"]),
        alpha=np.array(alpha) if alpha is not None else None,
        outputs=request["outputs"],
    )
    assert want.loss is not None and data["loss"] == float(want.loss)
    assert sorted(data) == sorted(["loss", "count", *request["outputs"]])
    for output in request["outputs"]:
        assert data[output] == getattr(want, output).tolist(), output


async def test_sigmoid_and_softmax_forms_are_chosen_by_the_targets_shape(client: httpx.AsyncClient) -> None:
    logits = [[2.0, -1.0], [0.5, 0.0]]
    sigmoid = await _post(
        client, {"logits": logits, "target": [[1, 0], [0, 1]], "outputs": ["probabilities"]}
    )
    softmax = await _post(client, {"logits": logits, "target": [0, 1], "outputs": ["probabilities"]})
    assert sigmoid["count"] == 4 and softmax["count"] == 2
    assert sigmoid["probabilities"][0][0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert sum(softmax["probabilities"][0]) == pytest.approx(1.0)


async def test_nothing_counted_gives_null_loss(client: httpx.AsyncClient) -> None:
    data = await _post(client, {"logits": [[1.0, 2.0]], "target": [-100], "outputs": ["grad"]})
    assert data == {"loss": None, "count": 0, "grad": [[0.0, 0.0]]}


# (request fields besides the seed's logits and targets, location, message fragment)
BAD: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"gamma": -1}, ["gamma"], "gamma = -1.0 must be a finite number >= 0"),
    ({"alpha": 0.25}, ["alpha"], "alpha has shape (); it needs one weight per class: (3,)"),
    ({"alpha": [1, 2]}, ["alpha"], "alpha has shape (2,); it needs one weight per class: (3,)"),
    ({"alpha": [1, -2, 1]}, ["alpha", 1], "alpha[1] = -2.0 is negative"),
    ({"target": [1, 3]}, ["target", 1], "target[1] = 3 is out of range for 3 classes"),
    ({"outputs": ["softmax"]}, ["outputs", 0], "Input should be 'losses', 'probabilities' or 'grad'"),
    ({"reduction": "average"}, ["reduction"], "Input should be 'mean', 'sum' or 'none'"),
    ({"label_smoothing": 0.1}, ["label_smoothing"], "label_smoothing"),
    ({"target": [[1, 0, 1], [0, 2, 0]]}, ["target", 1, 1], "target[1][1] = 2.0 is outside [0, 1]"),
    ({"target": [[1, 0, 1], [0, 1, 0]], "alpha": 2}, ["alpha"], "alpha of a sigmoid focal loss"),
]


@pytest.mark.parametrize(("fields", "loc", "fragment"), BAD)
async def test_bad_request_gets_a_clear_422(
    client: httpx.AsyncClient, fields: dict[str, Any], loc: list[Any], fragment: str
) -> None:
    body = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2], **fields}
    response = await client.post("/v1/focal-loss", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["loc"] == loc
    assert fragment in problem["errors"][0]["msg"]

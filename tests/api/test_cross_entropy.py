"""POST /v1/cross-entropy over HTTP (in process, through httpx's ASGITransport)."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from service.api.arrays import tensor_fields
from service.api.bulk_json import decode_bulk
from service.api.routing import BULK_MIN_BODY_BYTES
from service.api.schemas import CrossEntropyRequest, CrossEntropyResponse

pytestmark = pytest.mark.anyio

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
FASHION: dict[str, Any] = {
    "probabilities": [[0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]],
    "target": [4],
}


async def _post(client: httpx.AsyncClient, body: Any) -> dict[str, Any]:
    response = await client.post("/v1/cross-entropy", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data: dict[str, Any] = response.json()
    CrossEntropyResponse.model_validate(data)  # the documented schema holds
    return data


async def test_seed_logits_to_four_decimals(client: httpx.AsyncClient) -> None:
    data = await _post(client, SEED)
    assert round(data["loss"], 4) == 0.9185
    assert [round(v, 4) for v in data["losses"]] == [1.7413, 0.0957]
    assert np.round(data["softmax"], 4).tolist() == [
        [0.0391, 0.1753, 0.7856],
        [0.0166, 0.0746, 0.9088],
    ]
    assert data["count"] == 2


async def test_seed_fashion_mnist_probabilities(client: httpx.AsyncClient) -> None:
    assert sum(FASHION["probabilities"][0]) == pytest.approx(0.9999)
    data = await _post(client, FASHION)
    assert round(data["loss"], 4) == 2.4361
    assert data["softmax"] == FASHION["probabilities"]


async def test_labels_is_an_alias_of_target(client: httpx.AsyncClient) -> None:
    by_target = await _post(client, SEED)
    by_labels = await _post(client, {"logits": SEED["logits"], "labels": SEED["target"]})
    assert by_labels == by_target


async def test_unbatched_input_gives_scalars(client: httpx.AsyncClient) -> None:
    data = await _post(
        client,
        {
            "logits": [-1, 0.5, 2],
            "target": 1,
            "outputs": ["losses", "predictions", "target_probability"],
        },
    )
    assert isinstance(data["losses"], float)
    assert data["predictions"] == 2
    assert data["target_probability"] == pytest.approx(0.17529039214)


async def test_every_target_ignored_gives_null_loss_and_zero_grad(
    client: httpx.AsyncClient,
) -> None:
    data = await _post(
        client,
        {
            "logits": SEED["logits"],
            "target": [-100, -100],
            "outputs": ["grad", "target_probability"],
        },
    )
    assert data["loss"] is None
    assert data["count"] == 0
    assert data["grad"] == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert data["target_probability"] == [None, None]


async def test_float32_results_are_written_as_float32(client: httpx.AsyncClient) -> None:
    data = await _post(client, {**SEED, "dtype": "float32"})
    # The shortest decimal that round-trips the float32, not the float64 widening of it.
    assert repr(data["loss"]) == str(np.float32(data["loss"]))
    assert len(repr(data["loss"])) < len(repr(float(np.float32(data["loss"]))))
    assert round(data["loss"], 4) == 0.9185


async def test_outputs_selects_the_arrays_returned(client: httpx.AsyncClient) -> None:
    data = await _post(client, {**SEED, "outputs": []})
    assert set(data) == {"loss", "count"}
    data = await _post(client, {**SEED, "outputs": ["predictions", "grad"]})
    assert set(data) == {"loss", "count", "predictions", "grad"}


async def test_integer_literals_are_numbers(client: httpx.AsyncClient) -> None:
    data = await _post(client, {"logits": [[1, 2, 3]], "target": [0], "weight": [1, 2, 3]})
    assert data["loss"] == pytest.approx(2.40760596444438)


def _large_request(rows: int = 900, classes: int = 100) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    return {
        "logits": rng.normal(size=(rows, classes)).round(6).tolist(),
        "target": rng.integers(0, classes, rows).tolist(),
        "weight": rng.random(classes).round(3).tolist(),
        "outputs": ["losses", "grad", "predictions"],
    }


async def test_large_bodies_take_the_bulk_path_with_identical_results(client: httpx.AsyncClient) -> None:
    request = _large_request()
    body = orjson.dumps(request)
    assert len(body) >= BULK_MIN_BODY_BYTES
    assert decode_bulk(body, tensor_fields(CrossEntropyRequest)) is not None
    large = await _post(client, request)
    # The same numbers, sent as many small requests through the ordinary parser.
    for start in range(0, 900, 300):
        part = {
            **request,
            "logits": request["logits"][start : start + 10],
            "target": request["target"][start : start + 10],
            "reduction": "none",
        }
        small = await _post(client, part)
        assert small["losses"] == large["losses"][start : start + 10]
        assert small["predictions"] == large["predictions"][start : start + 10]


async def test_errors_in_large_bodies_are_as_precise_as_in_small_ones(client: httpx.AsyncClient) -> None:
    request = _large_request()
    request["logits"][823][56] = "0.5"
    response = await client.post("/v1/cross-entropy", json=request)
    assert response.status_code == 422
    assert (
        response.json()["errors"][0]["msg"]
        == "logits[823][56] = '0.5' is a string; numbers are written without quotes"
    )
    request = _large_request()
    request["target"][800] = 100
    response = await client.post("/v1/cross-entropy", json=request)
    assert response.json()["detail"] == "target[800] = 100 is out of range for 100 classes"


async def test_a_large_answer_is_streamed_with_the_same_bytes(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    import service.api.payloads as payloads
    from service.api.payloads import json_chunks

    rng = np.random.default_rng(5)
    request = {
        "logits": rng.normal(size=(300, 20)).tolist(),
        "target": rng.integers(0, 20, 300).tolist(),
        "outputs": ["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"],
    }
    whole = await client.post("/v1/cross-entropy", json=request)
    assert whole.status_code == 200
    assert int(whole.headers["content-length"]) == len(whole.content)
    # The same request, with the streaming threshold lowered below its 24,600 numbers.
    pieces: list[bytes] = []

    def recorded_chunks(body: dict[str, Any]) -> Any:
        for piece in functools.partial(json_chunks, chunk_numbers=500)(body):
            pieces.append(piece)
            yield piece

    monkeypatch.setattr(payloads, "STREAM_MIN_NUMBERS", 1000)
    monkeypatch.setattr(payloads, "json_chunks", recorded_chunks)
    streamed = await client.post("/v1/cross-entropy", json=request)
    assert streamed.status_code == 200
    assert "content-length" not in streamed.headers  # chunked transfer encoding over HTTP/1.1
    assert streamed.headers["content-type"] == "application/json"
    assert "x-request-id" in streamed.headers
    assert len(pieces) >= len(whole.content) // (128 * 1024)  # pieces of 64 KiB and more, not one
    assert streamed.content == whole.content
    CrossEntropyResponse.model_validate_json(streamed.content)

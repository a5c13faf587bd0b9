"""Every reference case through the client's methods, both transports, against a real ``python -m
service`` on loopback: the answers match PyTorch's, and JSON and binary tensors give the same bits."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.live import LiveServer
from tests.reference import Case, assert_matches, load_cases, request_of
from xent_client import (
    AsyncClient,
    BinaryCrossEntropyResult,
    Client,
    CrossEntropyResult,
    DivergenceResult,
    SoftmaxResult,
)
from xent_client._client import Dtype
from xent_client._transport import Transport

METHODS = {
    "/v1/cross-entropy": "cross_entropy",
    "/v1/binary-cross-entropy": "binary_cross_entropy",
    "/v1/softmax": "softmax",
    "/v1/divergence": "divergence",
}
Result = CrossEntropyResult | BinaryCrossEntropyResult | SoftmaxResult | DivergenceResult


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, retries=0) as client:
        yield client


def arguments(case: Case) -> dict[str, Any]:
    """The case's request as the method's keyword arguments (``labels`` is ``target``'s alias)."""
    request = request_of(case)
    if "labels" in request:
        request["target"] = request.pop("labels")
    return request


def as_response(result: Result) -> dict[str, Any]:
    """The result as the v1 response would carry it, for ``assert_matches`` (NaN reads as null)."""
    response: dict[str, Any] = {}
    for name in result.__dataclass_fields__:
        value = getattr(result, name)
        response[name] = value.tolist() if isinstance(value, np.ndarray) else value
    return response


def assert_same_bits(json_result: Result, binary_result: Result, name: str) -> None:
    for field in json_result.__dataclass_fields__:
        a, b = getattr(json_result, field), getattr(binary_result, field)
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray), f"{name}: {field}"
            assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {field}"
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {field}", strict=True)
        elif isinstance(a, float) and math.isnan(a):
            assert isinstance(b, float) and math.isnan(b), f"{name}: {field}"
        else:
            assert a == b, f"{name}: {field}: JSON {a!r}, binary {b!r}"


CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{case['name']}" for case in CASES])
def test_every_reference_case_both_transports(client: Client, case: Case) -> None:
    method = getattr(client, METHODS[case["endpoint"]])
    results = {transport: method(**arguments(case), transport=transport) for transport in ("json", "binary")}
    float32 = case["request"].get("dtype") == "float32" and case["endpoint"] != "/v1/divergence"
    for result in results.values():
        assert_matches(case, as_response(result))
        for name in result.__dataclass_fields__:
            value = getattr(result, name)
            if isinstance(value, np.ndarray):
                wanted = np.int64 if name == "predictions" else np.float32 if float32 else np.float64
                assert value.dtype == wanted, f"{case['name']}: {name} is {value.dtype}"
    assert_same_bits(results["json"], results["binary"], case["name"])


def test_result_arrays_have_the_requested_dtype(client: Client) -> None:
    logits = np.array([[-1, 0.5, 2], [-1, 0.5, 3]])
    transports: tuple[Transport, ...] = ("json", "binary")
    dtypes: tuple[tuple[Dtype, type[np.floating[Any]]], ...] = (
        ("float64", np.float64),
        ("float32", np.float32),
    )
    for transport in transports:
        for dtype, numpy_dtype in dtypes:
            result = client.cross_entropy(
                logits=logits,
                target=[1, 2],
                dtype=dtype,
                outputs=["losses", "softmax", "predictions"],
                transport=transport,
            )
            assert result.losses is not None and result.losses.dtype == numpy_dtype
            assert result.softmax is not None and result.softmax.dtype == numpy_dtype
            assert result.predictions is not None and result.predictions.dtype == np.int64
            assert isinstance(result.loss, float) and isinstance(result.count, int)
        none = client.cross_entropy(logits=logits, target=[1, 2], reduction="none", transport=transport)
        assert none.loss is None and none.losses is not None and none.losses.shape == (2,)


def test_auto_transport_picks_json_for_small_and_binary_for_large(live_server: LiveServer) -> None:
    from xent_client._transport import ENDPOINTS, JSON_MAX_NUMBERS, prepare

    small = prepare(ENDPOINTS["softmax"], {"logits": np.zeros((1, JSON_MAX_NUMBERS))}, {}, None, "auto")
    large = prepare(ENDPOINTS["softmax"], {"logits": np.zeros((1, JSON_MAX_NUMBERS + 1))}, {}, None, "auto")
    assert (small.binary, small.path) == (False, "/v1/softmax")
    assert (large.binary, large.path) == (True, "/v2/models/softmax/infer")


def test_the_articles_two_examples(client: Client) -> None:
    """The seed article: the 3-class example and the Fashion-MNIST prediction (-log 0.0875)."""
    seed = client.cross_entropy(logits=[[-1, 0.5, 2], [-1, 0.5, 3]], target=[1, 2])
    assert seed.loss == pytest.approx(0.9184928130357697, rel=1e-15)
    assert seed.losses is not None
    np.testing.assert_allclose(seed.losses, [1.7413112966571571, 0.09567432941438228], rtol=1e-15)
    prediction = [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]
    fashion = client.cross_entropy(probabilities=[prediction], target=[4], transport="binary")
    assert fashion.loss == pytest.approx(-math.log(0.0875), rel=1e-15)
    truth = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    divergence = client.divergence(p=[truth], q=[prediction])
    assert divergence.cross_entropy == pytest.approx(2.436116485618568, rel=1e-15)
    assert divergence.entropy == 0.0


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["json", "binary"])
async def test_async_client_has_the_same_methods_and_answers(
    live_server: LiveServer, client: Client, transport: Any
) -> None:
    by_endpoint = {endpoint: next(c for c in CASES if c["endpoint"] == endpoint) for endpoint in METHODS}
    async with AsyncClient(live_server.url, transport=transport) as aclient:
        for endpoint, case in by_endpoint.items():
            result = await getattr(aclient, METHODS[endpoint])(**arguments(case))
            assert_matches(case, as_response(result))
            assert_same_bits(
                result, getattr(client, METHODS[endpoint])(**arguments(case), transport=transport), ""
            )

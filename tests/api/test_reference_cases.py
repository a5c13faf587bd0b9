"""Every reference case computed by PyTorch, over HTTP, for all four endpoints."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel

from service.api.schemas import (
    BinaryCrossEntropyResponse,
    CrossEntropyResponse,
    DivergenceResponse,
    SoftmaxResponse,
)
from tests.reference import Case, assert_matches, load_cases, request_of

pytestmark = pytest.mark.anyio

CASES = load_cases()
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "/v1/cross-entropy": CrossEntropyResponse,
    "/v1/binary-cross-entropy": BinaryCrossEntropyResponse,
    "/v1/softmax": SoftmaxResponse,
    "/v1/divergence": DivergenceResponse,
}
DEFAULT_OUTPUTS = {
    "/v1/cross-entropy": ["losses", "softmax"],
    "/v1/binary-cross-entropy": ["losses", "sigmoid"],
}


@pytest.mark.parametrize("case", CASES, ids=[f"{case['endpoint']}:{case['name']}" for case in CASES])
async def test_reference_case_over_http(client: httpx.AsyncClient, case: Case) -> None:
    endpoint = case["endpoint"]
    response = await client.post(endpoint, json=request_of(case))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data = response.json()
    RESPONSE_MODELS[endpoint].model_validate(data)
    assert_matches(case, data)
    if endpoint in DEFAULT_OUTPUTS:
        requested = set(case["request"].get("outputs", DEFAULT_OUTPUTS[endpoint]))
        assert set(data) == {"loss", "count"} | requested

"""The metrics' reference cases over HTTP (/v1), checked against their schema too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.api.schemas import BinaryCrossEntropyResponse, CrossEntropyResponse
from tests.reference import Case, assert_matches, load_metric_cases, request_of

pytestmark = pytest.mark.anyio

CASES = load_metric_cases()
RESPONSE_MODELS: dict[str, Any] = {
    "/v1/cross-entropy": CrossEntropyResponse,
    "/v1/binary-cross-entropy": BinaryCrossEntropyResponse,
}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
async def test_metric_case_over_http(client: httpx.AsyncClient, case: Case) -> None:
    response = await client.post(case["endpoint"], json=request_of(case))
    assert response.status_code == 200, response.text
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    data = response.json()
    RESPONSE_MODELS[case["endpoint"]].model_validate(data)
    assert_matches(case, data)

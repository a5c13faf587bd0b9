"""Every PyTorch reference case of all four endpoints through /v2, in process: in JSON (flat and
nested), with binary tensors both ways (encoded and decoded by tritonclient), and against /v1's own
answer to the same case, which v2 must reproduce to the last bit."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray

from service.api.v2.protocol import InferenceResponse
from tests.reference import Case, assert_matches, load_cases, request_of
from tests.v2_cases import as_v1_response, binary_body, json_body, v2_request

pytestmark = pytest.mark.anyio

CASES = load_cases()
IDS = [f"{case['endpoint']}:{case['name']}" for case in CASES]
NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}


def expected_names(case: Case) -> list[str]:
    return [*case["expected"], *case.get("torch_nonfinite", {})]


async def infer_json(client: httpx.AsyncClient, case: Case, *, nested: bool) -> dict[str, NDArray[Any]]:
    request = v2_request(case)
    response = await client.post(f"/v2/models/{request.model}/infer", json=json_body(request, nested=nested))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert b"NaN" not in response.content and b"null" not in response.content
    document = InferenceResponse.model_validate_json(response.content)
    return {
        output.name: np.array(output.data, dtype=NUMPY[output.datatype]).reshape(output.shape)
        for output in document.outputs
    }


async def infer_binary(client: httpx.AsyncClient, case: Case) -> dict[str, NDArray[Any]]:
    request = v2_request(case)
    body, header_length = binary_body(request)
    response = await client.post(
        f"/v2/models/{request.model}/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(header_length)},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    result = triton.InferenceServerClient.parse_response_body(response.content, header_length=length)
    returned = [output["name"] for output in result.get_response()["outputs"]]
    assert all(output["parameters"]["binary_data_size"] > 0 for output in result.get_response()["outputs"])
    return {name: result.as_numpy(name) for name in returned}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_reference_case_in_json(client: httpx.AsyncClient, case: Case, nested: bool) -> None:
    outputs = await infer_json(client, case, nested=nested)
    assert_matches(case, as_v1_response(outputs, expected_names(case)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_reference_case_with_binary_tensors(client: httpx.AsyncClient, case: Case) -> None:
    outputs = await infer_binary(client, case)
    assert_matches(case, as_v1_response(outputs, expected_names(case)))
    dtype = np.float32 if case["request"].get("dtype") == "float32" else np.float64
    for name, value in outputs.items():
        if name not in {"count", "predictions"}:
            assert value.dtype == dtype, name


def _v1_array(value: Any, dtype: np.dtype[Any]) -> NDArray[Any]:
    """A v1 JSON value as v2 would send it: null (an ignored target's probability) is -1."""
    objects = np.array(value, dtype=object)
    missing = np.vectorize(lambda item: item is None, otypes=[bool])(objects)
    return np.where(missing, -1, objects).astype(dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_v1_and_v2_agree_exactly(client: httpx.AsyncClient, case: Case) -> None:
    v1 = await client.post(case["endpoint"], json=request_of(case))
    assert v1.status_code == 200, v1.text
    v1_body: dict[str, Any] = v1.json()
    v2 = await infer_binary(client, case)
    request = v2_request(case)
    for name in request.outputs:
        if v1_body[name] is None:
            assert name not in v2, f"{name} is null in v1 and must be absent in v2"
            continue
        got = v2[name]
        # JSON float32 is written shortest-round-trip, so v1's float32 numbers are exactly v2's.
        np.testing.assert_array_equal(got, _v1_array(v1_body[name], got.dtype), err_msg=name)
    assert set(v2) == {name for name in request.outputs if v1_body[name] is not None}

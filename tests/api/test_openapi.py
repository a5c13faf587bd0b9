"""The exported OpenAPI document: current, valid OpenAPI 3.1, and the contract users generate from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from service.api.openapi import openapi_text

ROOT = Path(__file__).resolve().parents[2]
EXPORTED = ROOT / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXPORTED.read_text())
    return loaded


def test_exported_document_is_current() -> None:
    assert EXPORTED.read_text() == openapi_text(), (
        "openapi/openapi.json is stale: run python scripts/export_openapi.py"
    )


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.anyio
async def test_served_document_is_the_exported_one(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served == document


def test_every_error_response_is_problem_json(document: dict[str, Any]) -> None:
    """Except the /v2 readiness probes' 503, which is the protocol's JSON `{"ready": false}`."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status == "503" and path.startswith("/v2/") and path.endswith("/ready"):
                    assert list(response["content"]) == ["application/json"], (path, method, status)
                elif status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (path, method, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_seed_examples_are_attached(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/cross-entropy"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples["seed_logits"]["value"] == {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
    assert "0.9185" in examples["seed_logits"]["description"]
    assert examples["seed_fashion_mnist"]["value"]["target"] == [4]
    assert "2.4361" in examples["seed_fashion_mnist"]["description"]
    assert operation["operationId"] == "cross_entropy"


def test_every_endpoint_is_documented(document: dict[str, Any]) -> None:
    for path, operation_id in [
        ("/v1/cross-entropy", "cross_entropy"),
        ("/v1/binary-cross-entropy", "binary_cross_entropy"),
        ("/v1/softmax", "softmax"),
        ("/v1/divergence", "divergence"),
    ]:
        operation = document["paths"][path]["post"]
        assert operation["operationId"] == operation_id
        assert operation["summary"]
        assert len(operation["description"]) > 200
        assert operation["requestBody"]["content"]["application/json"]["examples"]
        assert set(operation["responses"]) >= {"200", "413", "415", "422"}


def test_divergence_explains_itself_with_the_seed(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/divergence"]["post"]
    assert "H(p, q) = H(p) + KL(p ‖ q)" in operation["description"]
    example = operation["requestBody"]["content"]["application/json"]["examples"]["seed_fashion_mnist"]
    assert example["value"]["p"] == [[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]]
    assert sum(example["value"]["q"][0]) == pytest.approx(0.9999)
    assert "2.4361" in example["description"]


def _schemas_refer_to_themselves(document: dict[str, Any]) -> list[str]:
    schemas = document["components"]["schemas"]
    return [
        name for name, schema in schemas.items() if f'"#/components/schemas/{name}"' in json.dumps(schema)
    ]


def test_tensor_schemas_are_one_named_non_recursive_schema_each(document: dict[str, Any]) -> None:
    """Client generators cannot type schemas that refer to themselves, nor need `-Input`/`-Output` twins."""
    schemas = document["components"]["schemas"]
    assert _schemas_refer_to_themselves(document) == []
    assert not [name for name in schemas if name.endswith(("-Input", "-Output"))]
    for name in ("NumberTensor", "IndexTensor", "NullableNumberTensor", "TensorData"):
        depths = schemas[name]["anyOf"]
        assert len(depths) == 8, name  # the service's default XENT_MAX_DIMS
        innermost = depths[-1]
        for _ in range(8):
            assert innermost["type"] == "array" and innermost["minItems"] == 1
            innermost = innermost["items"]


def test_every_operation_declares_what_any_request_can_get(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert ("4XX" not in responses and "400" not in responses) or path.endswith("/infer"), path
            assert "WWW-Authenticate" in responses["401"]["headers"], (path, method)
            for status, response in responses.items():
                assert {"X-Request-ID", "Server-Timing"} <= set(response["headers"]), (path, method, status)
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]["responses"]["200"]
    assert set(infer["content"]) == {"application/json", "application/octet-stream"}
    assert "Inference-Header-Content-Length" in infer["headers"]
    problem = document["components"]["schemas"]["ProblemDetail"]
    assert "request_id" in problem["required"]
    assert "error" in document["components"]["schemas"]["InferenceProblem"]["required"]


def test_names_and_bounds_read_well(document: dict[str, Any]) -> None:
    # Relative: Swagger UI's "Try it out" calls the service that serves it, on whatever address.
    assert [server["url"] for server in document["servers"]] == ["/"]
    assert {tag["name"] for tag in document["tags"]} == {
        "losses",
        "inference",
        "operations",
    }
    assert list(document["components"]["securitySchemes"]) == ["bearerAuth"]
    text = json.dumps(document)
    assert "e+18" not in text  # int64 bounds are integers
    epsilon = document["components"]["schemas"]["CrossEntropyRequest"]["properties"]["epsilon"]
    assert epsilon["minimum"] == 2.2250738585072014e-308
    base = document["components"]["schemas"]["LogarithmBase"]
    assert base["x-enum-varnames"] == ["E", "TWO", "TEN"]
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                if parameter["in"] == "path":
                    assert parameter["schema"]["$ref"].endswith(("/ModelName", "/ModelVersion"))


def test_enums_are_named_schemas(document: dict[str, Any]) -> None:
    """Every enum is one component (generated code gets one enum type each, not one per field)."""
    schemas = document["components"]["schemas"]
    enums = {name for name, schema in schemas.items() if "enum" in schema}
    assert enums >= {"Reduction", "ComputeDtype", "TensorDatatype", "ModelName", "CrossEntropyOutput"}
    inline = [
        name for name, schema in schemas.items() if name not in enums and '"enum"' in json.dumps(schema)
    ]
    assert inline == []
    assert '"enum"' not in json.dumps(document["paths"])

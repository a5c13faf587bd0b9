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
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
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

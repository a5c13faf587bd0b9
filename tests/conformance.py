"""What tests check the service's answers against: openapi/openapi.json, and requests to every operation.

``REQUESTS`` are valid and invalid requests to every operation (each with its operation's path
template); ``check_conforms`` checks an answer against what the document declares for its operation:
the status, the media type for that status, the declared headers (present when required, values
as declared), that every header the service adds is declared, and the body (schemathesis's response
validation). ``tests/api`` sends them in process under every setting, ``tests/integration`` to a live
service.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import schemathesis

from service.api.openapi import HEADERS

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT: dict[str, Any] = json.loads((ROOT / "openapi" / "openapi.json").read_text())
KEY = "conformance-key"
V2_SEED = {
    "inputs": [
        {"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]},
        {"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]},
    ]
}
V2_BINARY = {**V2_SEED, "parameters": {"binary_data_output": True}}
#: Larger than the test settings' XENT_MAX_BODY_BYTES (2 MiB, tests/conftest.py's TEST_LIMITS).
TOO_LARGE = b"[" + b"0," * (1024 * 1024) + b"0]"
MODEL = "/v2/models/{model_name}"
VERSION = "/v2/models/{model_name}/versions/{model_version}"

#: (operation, concrete path, request): the requests every setting sends.
Request = tuple[str, str, str, dict[str, Any]]


def _v1_examples() -> Iterator[Request]:
    for path, item in DOCUMENT["paths"].items():
        if path.startswith("/v1/"):
            examples = item["post"]["requestBody"]["content"]["application/json"]["examples"]
            for example in examples.values():
                yield "post", path, path, {"json": example["value"]}
            yield "post", path, path, {"json": {"logits": "x"}}  # 422
            yield "post", path, path, {"content": b"{}", "headers": {"content-type": "text/plain"}}  # 415
            yield "post", path, path, {"content": TOO_LARGE, "headers": {"content-type": "application/json"}}


def _v2_requests() -> Iterator[Request]:
    for template, concrete in [
        ("/v2", "/v2"),
        ("/v2/health/live", "/v2/health/live"),
        ("/v2/health/ready", "/v2/health/ready"),
        (MODEL, "/v2/models/cross_entropy"),
        (MODEL, "/v2/models/no_such_model"),
        (VERSION, "/v2/models/softmax/versions/1"),
        (VERSION, "/v2/models/softmax/versions/9"),
        (f"{MODEL}/ready", "/v2/models/divergence/ready"),
        (f"{MODEL}/ready", "/v2/models/no_such_model/ready"),
        (f"{VERSION}/ready", "/v2/models/divergence/versions/1/ready"),
        (f"{VERSION}/ready", "/v2/models/divergence/versions/7/ready"),
    ]:
        yield "get", template, concrete, {}
    for template, prefix in [
        (f"{MODEL}/infer", "/v2/models/cross_entropy"),
        (f"{VERSION}/infer", "/v2/models/cross_entropy/versions/1"),
    ]:
        concrete = f"{prefix}/infer"
        yield "post", template, concrete, {"json": V2_SEED}
        yield "post", template, concrete, {"json": V2_BINARY}  # application/octet-stream
        yield "post", template, concrete, {"json": {"inputs": [{"name": "logits"}]}}  # 400
        yield "post", template, concrete.replace("cross_entropy", "nope"), {"json": V2_SEED}  # 404
        yield "post", template, concrete, {"content": b"{}", "headers": {"content-type": "text/plain"}}  # 415
        yield "post", template, concrete, {"content": TOO_LARGE}  # 413


def _other_requests() -> Iterator[Request]:
    for path in ("/health/live", "/health/ready", "/metrics"):
        yield "get", path, path, {}


REQUESTS: list[Request] = [*_v1_examples(), *_v2_requests(), *_other_requests()]

SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: Any = DOCUMENT
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    resolved: dict[str, Any] = target
    return resolved


def check_conforms(method: str, template: str, response: httpx.Response) -> str:
    """The answer is one the document declares for this operation: status, media type, headers, body."""
    where = f"{method.upper()} {template} -> {response.status_code}"
    declared = DOCUMENT["paths"][template][method]["responses"].get(str(response.status_code))
    assert declared is not None, f"{where}: status not declared; body {response.text[:300]}"
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type in declared["content"], f"{where}: {media_type} not declared"
    headers = {name.lower(): _resolve(header) for name, header in declared.get("headers", {}).items()}
    for name, header in headers.items():
        if header.get("required"):
            assert name in response.headers, f"{where}: declared header {name} missing"
        if name in response.headers:
            value, schema = response.headers[name], header["schema"]
            assert value in schema.get("enum", [value]), f"{where}: {name}: {value}"
            assert schema["type"] != "integer" or value.isdigit(), f"{where}: {name}: {value}"
    for name in HEADERS:
        if name.lower() in response.headers:
            assert name.lower() in headers, f"{where}: header {name} sent but not declared"
    if media_type.endswith("json"):
        # (A copy with a plain request: schemathesis reads the request, a streamed one cannot be.)
        request = httpx.Request(method.upper(), response.request.url)
        copy = httpx.Response(
            response.status_code, headers=response.headers, content=response.content, request=request
        )
        copy.elapsed = datetime.timedelta(0)
        SCHEMA[template][method].validate_response(copy)
    return str(response.status_code)

"""Everything the service sends is what openapi/openapi.json declares, under every setting.

Valid and invalid requests to every operation, with API keys off and on (health and metrics public or
not), while draining, and with a stalled body: each answer's status must be declared for its
operation, its media type declared for that status, the declared required headers present, every
header the service adds declared, and the body valid against the declared schema (schemathesis's
response validation). Then the other way round: every status the document declares was seen.
"""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import schemathesis

from service.api.openapi import HEADERS
from service.lifecycle import Lifecycle
from service.main import create_app
from tests.conftest import TEST_LIMITS, make_settings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT: dict[str, Any] = json.loads((ROOT / "openapi" / "openapi.json").read_text())
KEY = "conformance-key"
SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
V2_SEED = {
    "inputs": [
        {"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]},
        {"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]},
    ]
}
V2_BINARY = {**V2_SEED, "parameters": {"binary_data_output": True}}
TOO_LARGE = b"[" + b"0," * (TEST_LIMITS["max_body_bytes"] // 2) + b"0]"
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

#: Each setting: the app's settings, whether it drains, and the Authorization header sent.
SETTINGS: dict[str, tuple[dict[str, Any], bool, dict[str, str]]] = {
    "keys off": ({}, False, {}),
    "keys on, with the key": ({"api_keys": KEY}, False, {"authorization": f"Bearer {KEY}"}),
    "keys on, no key": ({"api_keys": KEY}, False, {}),
    "keys on, nothing public": (
        {"api_keys": KEY, "public_health": False, "public_metrics": False},
        False,
        {},
    ),
    "draining": ({}, True, {}),
}

SEEN: collections.defaultdict[tuple[str, str], set[str]] = collections.defaultdict(set)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: Any = DOCUMENT
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    resolved: dict[str, Any] = target
    return resolved


def check_conforms(method: str, template: str, response: httpx.Response) -> None:
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
    SEEN[(method, template)].add(str(response.status_code))


@pytest.fixture(params=list(SETTINGS))
async def setting(request: pytest.FixtureRequest) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    overrides, draining, headers = SETTINGS[request.param]
    lifecycle = Lifecycle()
    app = create_app(make_settings(**overrides), lifecycle=lifecycle)
    if draining:
        lifecycle.start_draining()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://service.test", headers=headers
    ) as client:
        yield client, request.param


@pytest.mark.anyio
async def test_every_answer_conforms(setting: tuple[httpx.AsyncClient, str]) -> None:
    client, name = setting
    statuses: collections.Counter[int] = collections.Counter()
    for method, template, concrete, kwargs in REQUESTS:
        response = await client.request(method.upper(), concrete, **kwargs)
        check_conforms(method, template, response)
        statuses[response.status_code] += 1
    if name == "keys on, no key":
        assert statuses[401] and statuses[200]  # health and metrics stay public
    if name == "keys on, nothing public":
        assert set(statuses) == {401}
    if name == "draining":
        assert statuses[503] == 4  # /health/ready and the three /v2 readiness probes


@pytest.mark.anyio
async def test_stalled_bodies_get_a_declared_408() -> None:
    app = create_app(make_settings(body_timeout=0.2))

    async def stalling() -> AsyncIterator[bytes]:
        yield b'{"logits": '
        await anyio.sleep(5)
        yield b"[1]}"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        for template, concrete in [(path, path) for path in DOCUMENT["paths"] if path.startswith("/v1/")] + [
            (f"{MODEL}/infer", "/v2/models/softmax/infer"),
            (f"{VERSION}/infer", "/v2/models/softmax/versions/1/infer"),
        ]:
            with anyio.fail_after(3):
                response = await client.post(
                    concrete, content=stalling(), headers={"content-type": "application/json"}
                )
            assert response.status_code == 408
            check_conforms("post", template, response)


def _answer(status: int, body: bytes, **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "http://service.test/v1/softmax")
    return httpx.Response(status, headers=headers, content=body, request=request)


def test_the_check_catches_untruths() -> None:
    """The check is not vacuous: an undeclared status, a missing header or a wrong body fails it."""
    good = {
        "content_type": "application/json",
        "x_request_id": "1",
        "server_timing": "app;dur=1",
        "x_content_type_options": "nosniff",
        "cache_control": "no-store",
    }
    body = b'{"softmax": [0.5, 0.5], "log_softmax": [-0.69, -0.69]}'
    check_conforms("post", "/v1/softmax", _answer(200, body, **_wire(good)))
    with pytest.raises(AssertionError, match="not declared"):
        check_conforms("post", "/v1/softmax", _answer(400, b"{}", **_wire(good)))
    with pytest.raises(AssertionError, match="header server-timing missing"):
        check_conforms("post", "/v1/softmax", _answer(200, body, **_wire({**good, "server_timing": ""})))
    with pytest.raises(AssertionError, match="not declared"):
        check_conforms("post", "/v1/softmax", _answer(200, body, **_wire({**good, "www_authenticate": "x"})))
    with pytest.raises(AssertionError, match="cache-control: public"):
        check_conforms(
            "post", "/v1/softmax", _answer(200, body, **_wire({**good, "cache_control": "public"}))
        )
    with pytest.raises(BaseExceptionGroup) as wrong_body:
        check_conforms("post", "/v1/softmax", _answer(200, b'{"softmax": "high"}', **_wire(good)))
    assert {type(error).__name__ for error in wrong_body.value.exceptions} == {"JsonSchemaError"}


def _wire(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items() if value}


def test_every_declared_status_is_one_the_service_sends() -> None:
    """Runs after the tests above (file order): each declared status was seen under some setting."""
    if not SEEN:
        pytest.skip("!!! the conformance tests above did not run (selected alone?): nothing to compare")
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert set(operation["responses"]) == SEEN[(method, path)], (method, path)

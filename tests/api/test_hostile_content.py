"""Content made to cost: refused with one clear problem, for no more than reading a valid body costs.

Unknown fields by the million, duplicate keys, compressed bodies, objects where numbers belong,
integers just past int64, shapes NumPy cannot lay out; and HEAD where GET works, and a client that
hangs up (499, not 500). The floods themselves, against a real server next to a well-behaved client,
are in tests/integration/test_content_floods.py.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route
from starlette.types import Message

from service.api.json_keys import check_keys
from service.core import InvalidInputError
from service.observability import TextFormatter

pytestmark = pytest.mark.anyio

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
V2_INFER = "/v2/models/cross_entropy/infer"
V2_SEED = {
    "inputs": [
        {"name": "logits", "shape": [2, 3], "datatype": "FP64", "data": [-1, 0.5, 2, -1, 0.5, 3]},
        {"name": "target", "shape": [2], "datatype": "INT64", "data": [1, 2]},
    ]
}
POSTS = {
    "/v1/cross-entropy": SEED,
    "/v1/binary-cross-entropy": {"logits": [0.5], "target": [1.0]},
    "/v1/softmax": {"logits": [1, 2]},
    "/v1/divergence": {"p": [0.5, 0.5], "q": [0.5, 0.5]},
    V2_INFER: V2_SEED,
}


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert "Traceback" not in response.text and "arr.size" not in response.text
    return body


# --- unknown fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 6, 150_000])
async def test_unknown_fields_are_refused_in_one_error(client: httpx.AsyncClient, count: int) -> None:
    keys = b",".join(b'"k%d": 0' % i for i in range(count))
    body = b'{"logits": [[1, 2]], ' + keys + b', "target": [0]}'
    problem = _problem(await client.post("/v1/cross-entropy", content=body), 422)
    (error,) = problem["errors"]
    assert error["type"] == "extra_forbidden" and error["loc"] == ["k0"]
    if count == 1:
        assert problem["detail"] == "k0: unknown field; see the API reference for the accepted fields"
    else:
        assert problem["detail"].startswith("unknown fields 'k0', 'k1', 'k2', 'k3', 'k4' and more;")


async def test_unknown_fields_beside_a_large_array_are_found_before_the_array_is_parsed(
    client: httpx.AsyncClient,
) -> None:
    rows = orjson.dumps([[0.25] * 100] * 3000)  # about 1.5 MB: the bulk parser's path
    body = b'{"logits": ' + rows + b', "surprise": 1, "target": [0]}'
    problem = _problem(await client.post("/v1/cross-entropy", content=body), 422)
    assert problem["errors"][0]["loc"] == ["surprise"]


async def test_v2_unknown_fields_top_level_and_inside_a_tensor(client: httpx.AsyncClient) -> None:
    problem = _problem(await client.post(V2_INFER, json={**V2_SEED, "extra": 1}), 400)
    assert problem["detail"].startswith("extra: unknown field")
    inputs = [{**V2_SEED["inputs"][0], "more": 1}, V2_SEED["inputs"][1]]
    problem = _problem(await client.post(V2_INFER, json={"inputs": inputs}), 400)
    assert "more: unknown field" in problem["detail"]


async def test_v2_takes_a_bounded_number_of_tensors(client: httpx.AsyncClient) -> None:
    inputs = [{"name": f"x{i}", "shape": [1], "datatype": "FP64", "data": [1]} for i in range(1000)]
    problem = _problem(await client.post(V2_INFER, json={"inputs": inputs}), 400)
    assert problem["detail"] == "inputs: 1000 items; at most 16 are accepted"


# --- duplicate keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/v1/cross-entropy", b'{"logits": [[1, 2]], "target": [0], "target": [1]}', "target"),
        ("/v1/cross-entropy", b'{"logits": [[1, 2]], "target": [0], "\\u0074arget": [1]}', "target"),
        ("/v1/softmax", b'{"logits": [1, 2], "dim": 0, "logits": [3, 4]}', "logits"),
        (V2_INFER, b'{"inputs": [], "id": "a", "id": "b"}', "id"),
        (V2_INFER, b'{"inputs": [{"name": "logits", "name": "target"}]}', "name"),
        (V2_INFER, b'{"inputs": [], "parameters": {"reduction": "sum", "reduction": "mean"}}', "reduction"),
    ],
)
async def test_a_key_twice_in_one_object_is_refused(
    client: httpx.AsyncClient, path: str, body: bytes, key: str
) -> None:
    problem = _problem(await client.post(path, content=body), 400 if path.startswith("/v2") else 422)
    (error,) = problem["errors"]
    assert error == {
        "loc": [key],
        "msg": f"{key}: the key appears more than once in one object; send each field once",
        "type": "duplicate_key",
    }


async def test_a_large_body_with_a_duplicate_key_is_refused_too(client: httpx.AsyncClient) -> None:
    rows = orjson.dumps([[0.25] * 100] * 3000)
    body = b'{"logits": ' + rows + b', "reduction": "sum", "target": [0], "reduction": "mean"}'
    problem = _problem(await client.post("/v1/cross-entropy", content=body), 422)
    assert problem["errors"][0]["type"] == "duplicate_key"


def test_the_same_key_in_different_objects_and_in_strings_is_no_duplicate() -> None:
    check_keys(b'{"inputs": [{"name": "a", "data": [1]}, {"name": "b", "data": [2]}], "id": "name\\": 1"}')
    check_keys(b'{"a": {"a": {"a": 1}}, "b": "{\\"a\\": 1, \\"a\\": 2}"}')
    with pytest.raises(InvalidInputError, match=r"^b: the key appears more than once"):
        check_keys(b'{"a": {"b": 1, "c": {"d": 2}, "b": 3}}')


def test_objects_deeper_than_the_model_are_not_walked() -> None:
    # /v1 bodies are flat: [{}, {}, ...] where numbers belong is left to the array check, in one step.
    check_keys(b'{"logits": [{"a": 1, "a": 2}], "target": [0]}', max_depth=1)


# --- framing and messages ------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(POSTS))
@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "zstd"])
async def test_compressed_bodies_are_refused_on_every_route(
    client: httpx.AsyncClient, path: str, encoding: str
) -> None:
    response = await client.post(path, json=POSTS[path], headers={"content-encoding": encoding})
    problem = _problem(response, 415)
    assert problem["detail"] == f"Content-Encoding {encoding} is not supported; send the body uncompressed"
    identity = await client.post(path, json=POSTS[path], headers={"content-encoding": "identity"})
    assert identity.status_code == 200, identity.text


@pytest.mark.parametrize("target", [2**63, 2**63 + 5, 2**64 - 1])
@pytest.mark.parametrize("rows", [1, 20_000], ids=["small body", "bulk body"])
async def test_integers_past_int64_are_out_of_range_not_floats(
    client: httpx.AsyncClient, target: int, rows: int
) -> None:
    logits = orjson.dumps([[1.5, 2.5]] * rows)
    targets = b",".join([b"1"] * (rows - 1) + [str(target).encode()])
    body = b'{"logits": ' + logits + b', "target": [' + targets + b"]}"
    problem = _problem(await client.post("/v1/cross-entropy", content=body), 422)
    assert problem["detail"] == f"target[{rows - 1}] = {target} is outside the 64-bit integer range"


@pytest.mark.parametrize("shape", [[0, 2**62, 2**62], [2**62, 0], [0, 2**63 - 1]])
@pytest.mark.parametrize("binary", [False, True])
async def test_an_empty_tensor_with_an_enormous_dimension_is_refused_in_words(
    client: httpx.AsyncClient, shape: list[int], binary: bool
) -> None:
    target: dict[str, Any] = {"name": "target", "shape": shape, "datatype": "INT64"}
    if binary:
        target["parameters"] = {"binary_data_size": 0}
    else:
        target["data"] = []
    header = orjson.dumps({"inputs": [V2_SEED["inputs"][0], target]})
    headers = {"inference-header-content-length": str(len(header))} if binary else {}
    problem = _problem(await client.post(V2_INFER, content=header, headers=headers), 400)
    assert problem["detail"] == (
        f"input 'target' of shape {shape} has a dimension of {max(shape)}; at most 100000 are accepted "
        "per dimension (XENT_MAX_ELEMENTS)"
    )


# --- HEAD and the client that goes away ----------------------------------------------------------


def _get_paths(app: FastAPI) -> set[str]:
    """Every GET path without parameters: those the OpenAPI document lists, and the pages it does not."""
    paths = {path for path, operations in app.openapi()["paths"].items() if "get" in operations}
    paths |= {r.path for r in app.routes if isinstance(r, APIRoute | Route) and "GET" in (r.methods or set())}
    return {path for path in paths if "{" not in path}


async def test_head_is_answered_wherever_get_is(app: FastAPI, client: httpx.AsyncClient) -> None:
    paths = _get_paths(app)
    assert {"/", "/health/live", "/health/ready", "/metrics", "/v2", "/docs", "/openapi.json"} <= paths
    for path in sorted(paths):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert (await client.head("/v1/cross-entropy")).status_code == 405


async def test_a_client_that_hangs_up_mid_upload_is_a_499(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"logits": [[1, ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/cross-entropy",
        "raw_path": b"/v1/cross-entropy",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5),
        "server": ("127.0.0.1", 8000),
    }
    with caplog.at_level(logging.INFO, logger="service.access"):
        await app(scope, receive, send)
    assert sent == []  # no one to answer
    (record,) = [r for r in caplog.records if r.name == "service.access"]
    assert record.status == 499  # type: ignore[attr-defined]
    metrics = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service.test")
    async with metrics:
        text = (await metrics.get("/metrics")).text
    assert 'route="/v1/cross-entropy",status="499"' in text
    assert 'route="/v1/cross-entropy",status="500"' not in text


def test_text_logs_escape_what_a_client_sent() -> None:
    formatter = TextFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "service.access", logging.INFO, "", 0, "%s %s", ("POST", "/x\nforged\x1b[31m"), None
    )
    line = formatter.format(record)
    assert line == "INFO POST /x\\x0aforged\\x1b[31m"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "\nTraceback" in TextFormatter("%(message)s").format(record)  # our own text keeps its lines

"""/v2 requests built to hurt: each gets a quick 400, never a 500 or minutes of CPU."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.anyio

LOGITS = '{"name": "logits", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}'
TARGET = '{"name": "target", "datatype": "INT64", "shape": [1], "data": [0]}'
HUGE = "9" * 4000

CASES: list[tuple[str, str, list[tuple[bytes, bytes]], str]] = [
    (
        "4000-digit dimension of a BOOL input",
        '{"inputs": [{"name": "target", "datatype": "BOOL", "shape": [' + HUGE + '], "data": [true]}]}',
        [],
        "shape[0]",
    ),
    (
        "non-ASCII digit as header length",
        '{"inputs": []}',
        [(b"inference-header-content-length", b"\xb2")],
        "byte count",
    ),
    (
        "label_smoothing 1e400",
        '{"inputs": [' + LOGITS + ", " + TARGET + '], "parameters": {"label_smoothing": 1e400}}',
        [],
        "label_smoothing",
    ),
    (
        "integer parameter beyond 64 bits",
        '{"inputs": [' + LOGITS + ", " + TARGET + '], "parameters": {"ignore_index": ' + "1" * 40 + "}}",
        [],
        "ignore_index",
    ),
    (
        "dimension beyond 64 bits",
        '{"inputs": [{"name": "logits", "datatype": "FP64", "shape": [0, 1' + "0" * 20 + '], "data": []}]}',
        [],
        "shape[1]",
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "names"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
async def test_hostile_request_gets_a_quick_400(
    client: httpx.AsyncClient, body: str, headers: list[tuple[bytes, bytes]], names: str
) -> None:
    # Quick in CPU time, which other processes on the machine do not inflate: a hostile shape that
    # made the service allocate or loop would take far more than 2 s of it. The wall-clock bound is
    # only a backstop against a hang, generous enough for a loaded machine.
    started, cpu_started = time.perf_counter(), time.process_time()
    response = await client.post(
        "/v2/models/cross_entropy/infer",
        content=body.encode(),
        headers=[(b"content-type", b"application/json"), *headers],
    )
    assert time.process_time() - cpu_started < 2
    assert time.perf_counter() - started < 10
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert names in response.json()["error"]


async def test_a_stalled_body_gets_408_with_error() -> None:
    from tests.conftest import post_stalled

    body = ('{"inputs": [' + LOGITS + ", " + TARGET + "]}").encode()
    response = await post_stalled("/v2/models/cross_entropy/infer", body)
    assert response.status_code == 408
    assert "XENT_BODY_TIMEOUT" in response.json()["error"]

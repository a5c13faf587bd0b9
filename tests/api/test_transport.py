"""How the service answers at the HTTP level: content types, sizes, routes, methods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Message, Receive

from service.settings import Settings

pytestmark = pytest.mark.anyio

SEED = b'{"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}'


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/problem+json",
    ],
)
async def test_json_content_types_are_accepted(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post("/v1/cross-entropy", content=SEED, headers={"content-type": content_type})
    assert response.status_code == 200


async def test_a_missing_content_type_is_read_as_json(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/v1/cross-entropy", content=SEED)
    assert "content-type" not in request.headers
    response = await client.send(request)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ],
)
async def test_other_content_types_get_415(client: httpx.AsyncClient, content_type: str) -> None:
    response = await client.post("/v1/cross-entropy", content=SEED, headers={"content-type": content_type})
    body = _assert_problem(response, 415)
    assert "application/json" in str(body["detail"])


async def test_a_body_over_the_limit_gets_413(client: httpx.AsyncClient, settings: Settings) -> None:
    body = b'{"logits": [' + b"0.5," * (settings.max_body_bytes // 4) + b'0.5], "target": 0}'
    response = await client.post(
        "/v1/cross-entropy", content=body, headers={"content-type": "application/json"}
    )
    problem = _assert_problem(response, 413)
    assert str(settings.max_body_bytes) in str(problem["detail"])


async def test_a_streamed_body_over_the_limit_gets_413(client: httpx.AsyncClient, settings: Settings) -> None:
    chunk = b"[" + b"1," * 32_767 + b"1]"

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"logits": ['
        for _ in range(settings.max_body_bytes // len(chunk) + 2):
            yield chunk + b","
        yield b'[1]], "target": 0}'

    response = await client.post(
        "/v1/cross-entropy", content=stream(), headers={"content-type": "application/json"}
    )
    _assert_problem(response, 413)


async def test_unknown_route_gets_404(client: httpx.AsyncClient) -> None:
    body = _assert_problem(await client.get("/v1/nope"), 404)
    assert "/v1/nope" in str(body["detail"])


async def test_a_long_unknown_path_is_not_echoed_in_full(client: httpx.AsyncClient) -> None:
    path = "/v1/" + "x" * 5000
    body = _assert_problem(await client.get(path), 404)
    assert str(body["detail"]).startswith("no such resource: /v1/xxx")
    assert str(body["detail"]).endswith("...")
    assert len(str(body["detail"])) < 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_gets_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/v1/cross-entropy")
    _assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_invalid_content_length_gets_400(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/v1/cross-entropy", content=SEED)
    request.headers["content-length"] = "12abc"
    _assert_problem(await client.send(request), 400)


async def test_large_requests_wait_for_one_process_wide_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading
    import time

    from service.api.routing import LeanJSONRoute
    from service.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(compute_concurrency=1, offload_bytes=0))
    lock = threading.Lock()
    active = 0
    most = 0
    original = LeanJSONRoute.respond

    def slow_respond(self: LeanJSONRoute, body: bytearray, scope: dict[str, object]) -> object:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.05)
        try:
            return original(self, body, scope)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(LeanJSONRoute, "respond", slow_respond)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        requests = [
            client.post("/v1/cross-entropy", content=SEED, headers={"content-type": "application/json"})
            if i % 2
            else client.post("/v1/softmax", json={"logits": [1.0, 2.0]})
            for i in range(6)
        ]
        responses = await asyncio.gather(*requests)
    assert [response.status_code for response in responses] == [200] * 6
    assert most == 1  # one gate for every route, not one per route


async def test_a_body_slower_than_the_timeout_gets_408(client: httpx.AsyncClient) -> None:
    from tests.conftest import post_stalled

    response = await post_stalled("/v1/cross-entropy", SEED, headers={"content-type": "application/json"})
    body = _assert_problem(response, 408)
    assert "for 0.2 seconds" in str(body["detail"])
    assert response.headers["connection"] == "close"
    # A body that does arrive in time is answered as usual.
    assert (await client.post("/v1/cross-entropy", content=SEED)).status_code == 200


def _body_in_parts(*gaps: float) -> Receive:
    """A client sending one part of a body after each gap (seconds), the last part last."""
    remaining = list(gaps)

    async def receive() -> Message:
        await asyncio.sleep(remaining.pop(0))
        return {"type": "http.request", "body": b"x", "more_body": bool(remaining)}

    return receive


async def _read_all(receive: Receive) -> bytearray:
    body = bytearray()
    while True:
        message = await receive()
        body += message["body"]
        if not message["more_body"]:
            return body


async def test_body_deadlines_cut_off_only_silent_reads() -> None:
    from service.api.errors import Problem
    from service.api.routing import BodyDeadlines

    # A 1 s timeout against gaps of at most 0.2 s: only an event-loop stall of 0.8 s, not the 0.1 s
    # ones a loaded machine has, could make a steady body look silent.
    deadlines = BodyDeadlines(1.0)
    loop = asyncio.get_running_loop()
    # In time, many at once: each read gets its whole body.
    bodies = await asyncio.gather(
        *(deadlines.read(_body_in_parts(0.01 * i, 0.01), _read_all) for i in range(10))
    )
    assert bodies == [bytearray(b"xx")] * 10
    # Slow but steady: 0.2 s between parts, 1.6 s in all, longer than the timeout.
    assert await deadlines.read(_body_in_parts(*[0.2] * 8), _read_all) == bytearray(b"x" * 8)
    # Silent for longer than the timeout: 408, not before the timeout. The upper bound allows a
    # period and 2 s of stalls, and still tells a cut-off read from one let run to its end (5 s).
    started = loop.time()
    with pytest.raises(Problem) as raised:
        await deadlines.read(_body_in_parts(0.05, 5), _read_all)
    waited = loop.time() - started
    assert raised.value.status == 408
    assert "XENT_BODY_TIMEOUT" in raised.value.detail
    assert 0.05 + 1.0 <= waited <= 0.05 + 1.0 + deadlines.period + 2.0
    # A read cancelled for another reason stays cancelled: that is not a timeout.
    reader = asyncio.ensure_future(deadlines.read(_body_in_parts(5), _read_all))
    await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # Nor is one whose deadline passes in the same step as another cancellation (a shutdown, say).
    reader = asyncio.ensure_future(deadlines.read(_body_in_parts(5), _read_all))
    await asyncio.sleep(0.01)
    deadlines._reads[reader] = 0.0  # overdue
    deadlines._cut_off_silent_reads(loop)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # Nothing is left behind: no reads tracked, and the timer stops once none are in progress.
    await asyncio.sleep(deadlines.period * 3)
    assert not deadlines._reads and not deadlines._expired
    assert deadlines._timer is None

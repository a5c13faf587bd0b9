"""The memory budget and the upload's minimum rate, seen by a client of the app (in process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import numpy as np
import orjson
import pytest
from starlette.types import Message, Receive

from service.api.errors import Problem
from service.api.routing import BYTES_PER_NUMBER, BodyDeadlines
from service.budget import MemoryBudget
from service.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

BODY = orjson.dumps(
    {"logits": np.random.default_rng(0).normal(size=(64, 10)), "target": list(range(10)) * 6 + [0] * 4},
    option=orjson.OPT_SERIALIZE_NUMPY,
)
#: What BODY reserves once read (RawBodyRoute.cost): 1,000 bytes of room more or less decide.
COST = len(BODY) + BYTES_PER_NUMBER * (BODY.count(b",") + 1)


def _client(**settings: object) -> tuple[httpx.AsyncClient, MemoryBudget]:
    # Bodies over 1 KiB count as large here, so that BODY takes part in the budget.
    app = create_app(make_settings(offload_bytes=1024, **settings))
    transport = httpx.ASGITransport(app=app)
    budget: MemoryBudget = app.state.memory_budget
    return httpx.AsyncClient(transport=transport, base_url="http://service.test"), budget


@pytest.mark.parametrize("path", ["/v1/cross-entropy", "/v2/models/cross_entropy/infer"])
async def test_a_request_larger_than_the_whole_budget_gets_413_at_once(path: str) -> None:
    client, budget = _client(memory_budget=COST // 2, memory_wait=30)
    async with client:
        # Refused before it is parsed: /v2 would have found this body's content wrong.
        response = await asyncio.wait_for(client.post(path, content=BODY), 5)
    assert response.status_code == 413, response.text
    assert "XENT_MEMORY_BUDGET" in response.json()["detail"]
    assert budget.used == 0


@pytest.mark.parametrize("path", ["/v1/cross-entropy", "/v2/models/cross_entropy/infer"])
async def test_a_request_that_finds_the_budget_full_waits_then_gets_503_with_retry_after(path: str) -> None:
    client, budget = _client(memory_budget=COST + 1000, memory_wait=0.3)
    async with client:
        other = budget.reservation()
        await other.resize(COST // 2)  # another large request holds half
        started = asyncio.get_running_loop().time()
        refused = await client.post(path, content=BODY)
        waited = asyncio.get_running_loop().time() - started
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert "XENT_MEMORY_WAIT" in refused.json()["detail"]
        assert 0.25 <= waited < 5
        assert budget.used == COST // 2  # the refused request gave back its body's share

        # Room comes free while it waits: it goes on, and gives everything back when answered.
        waiting = asyncio.ensure_future(client.post("/v1/cross-entropy", content=BODY))
        await asyncio.sleep(0.1)
        other.release()
        answered = await asyncio.wait_for(waiting, 5)
        assert answered.status_code == 200, answered.text
        assert budget.used == 0


async def test_a_chunked_body_is_reserved_as_it_grows() -> None:
    client, budget = _client(memory_budget=4096, memory_wait=0.2)

    async def parts() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 512  # 10 KB of blanks: more than the budget holds

    async with client:
        response = await client.post("/v1/cross-entropy", content=parts())
    assert response.status_code == 413, response.text
    assert budget.used == 0


def _trickle(parts: int, gap: float, size: int = 1) -> Receive:
    remaining = [parts]

    async def receive() -> Message:
        await asyncio.sleep(gap)
        remaining[0] -= 1
        return {"type": "http.request", "body": b"x" * size, "more_body": remaining[0] > 0}

    return receive


async def _read_all(receive: Receive) -> bytearray:
    body = bytearray()
    while True:
        message = await receive()
        body += message["body"]
        if not message["more_body"]:
            return body


async def test_an_upload_slower_than_the_minimum_rate_gets_408_though_never_silent() -> None:
    deadlines = BodyDeadlines(0.3, min_rate=1000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Problem) as raised:
        # A byte every 0.05 s: never silent for the timeout, but 20 bytes per second.
        await deadlines.read(_trickle(1000, 0.05), _read_all)
    assert raised.value.status == 408
    assert "XENT_MIN_RECEIVE_RATE" in raised.value.detail
    assert 0.3 <= loop.time() - started < 0.3 + deadlines.period + 0.5
    # At the rate: 100 bytes every 0.05 s is 2000 bytes per second, for three times the timeout.
    body = await deadlines.read(_trickle(18, 0.05, size=100), _read_all)
    assert len(body) == 1800


async def test_an_answer_larger_than_its_estimate_is_still_sent() -> None:
    """Every output of a batch of few classes makes an answer larger than the body's estimate: the
    finished answer is sent (it exists already), never refused as a 500 for want of room."""
    logits = np.round(np.random.default_rng(3).normal(size=(9000, 7)), 3)
    body = orjson.dumps(
        {
            "logits": logits.tolist(),
            "target": [1] * 9000,
            "outputs": ["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"],
        }
    )
    client, budget = _client(memory_budget=4_000_000, memory_wait=1)
    async with client:
        response = await client.post("/v1/cross-entropy", content=body)
    assert response.status_code == 200, response.text[:300]
    assert len(response.content) > 4_000_000 // 2
    assert budget.used == 0

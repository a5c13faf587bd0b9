"""Every kind of failure becomes a clear exception; retries happen exactly where they should."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.client.stubs import front
from tests.live import LiveServer, free_port, start_server, stop_server
from xent_client import (
    AsyncClient,
    Client,
    ErrorItem,
    ProblemError,
    ServiceUnavailableError,
    TransportError,
    XentError,
)
from xent_client._retry import MAX_WAIT, wait_before_retry
from xent_client._transport import Transport

SEED: dict[str, Any] = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
SEED_LOSS = 0.9184928130357697
KEY = "client-test-key"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A service that wants an API key and admits bodies of at most 64 KiB."""
    env = {"XENT_API_KEYS": KEY, "XENT_MAX_BODY_BYTES": "65536", "XENT_LOG_LEVEL": "warning"}
    server = start_server(tmp_path_factory.mktemp("guarded"), env=env)
    yield server
    assert stop_server(server) == 0, server.output()


@pytest.mark.parametrize(("transport", "status"), [("json", 422), ("binary", 400)])
def test_invalid_content_names_field_position_and_problem(
    live_server: LiveServer, transport: Transport, status: int
) -> None:
    with Client(live_server.url) as client, pytest.raises(ProblemError) as raised:
        client.cross_entropy(logits=[[-1, 0.5, 2], [-1, 0.5, 3]], target=[1, 7], transport=transport)
    error = raised.value
    assert error.status == status
    assert error.type == ("/problems/invalid-input" if status == 422 else "/problems/bad-request")
    assert error.detail == "target[1] = 7 is out of range for 3 classes"
    assert error.errors == (ErrorItem(("target", 1), error.detail, "out_of_range"),)
    assert error.request_id and len(error.request_id) == 32
    assert str(error) == f"{status} {error.title}: {error.detail}"


def test_not_found(live_server: LiveServer) -> None:
    with Client(live_server.url + "/nowhere") as client, pytest.raises(ProblemError) as raised:
        client.softmax(logits=[1.0, 2.0])
    assert (raised.value.status, raised.value.type) == (404, "/problems/not-found")


def test_missing_and_wrong_api_key_then_the_right_one(guarded: LiveServer) -> None:
    for key in (None, "wrong"):
        with Client(guarded.url, api_key=key) as client, pytest.raises(ProblemError) as raised:
            client.cross_entropy(**SEED)
        assert (raised.value.status, raised.value.type) == (401, "/problems/unauthorized")
    with Client(guarded.url, api_key=KEY) as client:
        assert client.cross_entropy(**SEED).loss == pytest.approx(SEED_LOSS, rel=1e-15)


def test_a_body_over_the_servers_limit_is_413_and_evaluate_keeps_within_it(guarded: LiveServer) -> None:
    logits = np.random.default_rng(1).normal(size=(2000, 10))
    target = np.arange(2000) % 10
    with Client(guarded.url, api_key=KEY, transport="binary") as client:
        with pytest.raises(ProblemError) as raised:
            client.cross_entropy(logits=logits, target=target)
        assert (raised.value.status, raised.value.type) == (413, "/problems/content-too-large")
        assert "65536" in raised.value.detail
    # Told the server's limit, evaluate splits the same input into requests that fit it.
    with Client(guarded.url, api_key=KEY, max_body_bytes=65536) as client:
        result = client.evaluate(logits, target, concurrency=2)
    assert result.requests > 1
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert result.loss == pytest.approx(-logp[np.arange(2000), target].mean(), rel=1e-12)


def test_unreachable_service_is_a_transport_error_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, retries=2, backoff=0.01) as client, pytest.raises(TransportError) as raised:
        client.cross_entropy(**SEED)
    assert raised.value.url.rstrip("/") == url
    assert "cannot reach the service" in str(raised.value)
    assert isinstance(raised.value, XentError)


def test_503_twice_then_200_is_retried_and_answered(live_server: LiveServer) -> None:
    with front(live_server.url, [503, 503]) as stub, Client(stub.url, retries=3, backoff=0.01) as client:
        result = client.cross_entropy(**SEED, transport="binary")
        assert stub.seen == 3
    assert result.loss == pytest.approx(SEED_LOSS, rel=1e-15)


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_each_retryable_status_is_retried(live_server: LiveServer, status: int) -> None:
    with front(live_server.url, [status]) as stub, Client(stub.url, retries=1, backoff=0.01) as client:
        assert client.cross_entropy(**SEED).loss == pytest.approx(SEED_LOSS, rel=1e-15)
        assert stub.seen == 2


def test_a_dropped_connection_is_retried(live_server: LiveServer) -> None:
    with front(live_server.url, ["drop"]) as stub, Client(stub.url, retries=1, backoff=0.01) as client:
        assert client.cross_entropy(**SEED).loss == pytest.approx(SEED_LOSS, rel=1e-15)
        assert stub.seen == 2


def test_retries_run_out_with_the_last_answer(live_server: LiveServer) -> None:
    with front(live_server.url, [503, 503, 503]) as stub, Client(stub.url, retries=2, backoff=0.01) as client:
        with pytest.raises(ServiceUnavailableError) as raised:
            client.cross_entropy(**SEED)
        assert stub.seen == 3
    assert raised.value.status == 503 and raised.value.request_id == "front-3"


def test_422_is_not_retried(live_server: LiveServer) -> None:
    with front(live_server.url, []) as stub, Client(stub.url, retries=3, backoff=0.01) as client:
        with pytest.raises(ProblemError) as raised:
            client.cross_entropy(logits=[[1.0, 2.0]], target=[5])
        assert stub.seen == 1
    assert raised.value.status == 422 and not isinstance(raised.value, ServiceUnavailableError)


def test_retry_after_is_honoured(live_server: LiveServer) -> None:
    with front(live_server.url, [503], retry_after="1") as stub, Client(stub.url, backoff=0.001) as client:
        started = time.monotonic()
        client.cross_entropy(**SEED)
        assert time.monotonic() - started >= 1.0
        assert stub.seen == 2


@pytest.mark.anyio
async def test_async_client_retries_and_raises_alike(live_server: LiveServer) -> None:
    with front(live_server.url, [503, 503]) as stub:
        async with AsyncClient(stub.url, backoff=0.01) as client:
            result = await client.cross_entropy(**SEED, transport="binary")
            assert result.loss == pytest.approx(SEED_LOSS, rel=1e-15) and stub.seen == 3
            with pytest.raises(ProblemError) as raised:
                await client.cross_entropy(logits=[[1.0, 2.0]], target=[5])
            assert raised.value.status == 422 and stub.seen == 4


def test_wait_grows_exponentially_with_jitter_and_follows_retry_after() -> None:
    for attempt in range(5):
        waits = [wait_before_retry(attempt, 0.1) for _ in range(200)]
        assert 0.05 * 2**attempt <= min(waits) and max(waits) <= 0.1 * 2**attempt
        assert len(set(waits)) > 100  # jittered
    assert wait_before_retry(0, 0.1, "3") >= 3.0
    assert wait_before_retry(0, 0.1, "Wed, 21 Oct 2015 07:28:00 GMT") <= 0.1  # a date in the past
    assert wait_before_retry(0, 0.1, "soon") <= 0.1  # unreadable: ignored
    assert wait_before_retry(20, 1.0) == MAX_WAIT


def test_nan_cannot_go_as_json_but_binary_gets_the_services_message(live_server: LiveServer) -> None:
    with Client(live_server.url) as client:
        with pytest.raises(XentError, match="NaN and Infinity cannot be written as JSON"):
            client.softmax(logits=[1.0, float("nan")], transport="json")
        with pytest.raises(XentError, match="JSON; the metrics and their options are /v1"):
            client.cross_entropy(logits=[[1.0, float("nan")]], target=[0], outputs=["accuracy"])  # auto
        with pytest.raises(ProblemError) as raised:
            client.softmax(logits=[1.0, float("nan")])  # auto: sent as binary
    assert raised.value.status == 400 and raised.value.errors[0].loc[:1] == ("logits",)


def test_an_answer_that_is_not_problem_json_still_gives_status_and_reason() -> None:
    """What a proxy in front of the service may send: nginx's HTML page, plain text, nothing."""
    html = b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body></body></html>"
    cases = [
        (413, html, {"content-type": "text/html"}, "413 Request Entity Too Large"),
        (502, b"upstream went away\nmore", {"content-type": "text/plain"}, "upstream went away"),
        (504, b"", {}, "HTTP 504 with an empty body"),
    ]
    for status, body, headers, detail in cases:
        error = ProblemError.from_response(httpx.Response(status, content=body, headers=headers))
        assert (error.status, error.detail, error.type, error.errors) == (status, detail, "about:blank", ())

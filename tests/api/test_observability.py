"""Request ids, security headers, access logs and metrics."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from service.observability import JsonFormatter

pytestmark = pytest.mark.anyio

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}


async def test_a_request_id_is_generated_and_returned(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/cross-entropy", json=SEED)
    second = await client.post("/v1/cross-entropy", json=SEED)
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_the_clients_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/cross-entropy", json=SEED, headers={"x-request-id": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 200, "semi;colon", "back\\slash", "<script>"])
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.post("/v1/cross-entropy", json=SEED, headers={"x-request-id": unsafe})
    assert response.headers["x-request-id"] != unsafe
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_problems_carry_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/cross-entropy", json={"logits": [[1, 2]], "target": [5]}, headers={"x-request-id": "req-7"}
    )
    assert response.status_code == 422
    assert response.json()["request_id"] == "req-7"
    not_found = await client.get("/nowhere", headers={"x-request-id": "req-8"})
    assert not_found.json()["request_id"] == "req-8"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/cross-entropy", SEED, 200),
        ("POST", "/v1/cross-entropy", {"target": [1]}, 422),
        ("GET", "/v1/cross-entropy", None, 405),
        ("GET", "/nowhere", None, 404),
        ("GET", "/health/ready", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/openapi.json", None, 200),
    ],
)
async def test_every_response_has_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"]


async def test_access_log_line_has_the_facts_and_never_the_body(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    marker = 123.456789012345
    caplog.set_level(logging.INFO, logger="service.access")
    response = await client.post(
        "/v1/cross-entropy",
        json={"logits": [[marker, 0.0], [1.0, 2.0], [3.0, 4.0]], "target": [0, 1, 1]},
        headers={"x-request-id": "log-me"},
    )
    assert response.status_code == 200
    records = [record for record in caplog.records if record.name == "service.access"]
    assert records
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "log-me"
    assert line["method"] == "POST"
    assert line["route"] == "/v1/cross-entropy"
    assert line["status"] == 200
    assert line["batch_size"] == 3
    assert line["duration_ms"] > 0
    assert str(marker) not in caplog.text


def test_log_lines_are_json_objects() -> None:
    record = logging.LogRecord("service", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.request_id = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["level"] == "warning"
    assert line["request_id"] == "abc"
    assert line["time"].endswith("Z")


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_count_requests_samples_and_validation_failures(client: httpx.AsyncClient) -> None:
    before = (await client.get("/metrics")).text
    await client.post("/v1/cross-entropy", json=SEED)
    await client.post("/v1/cross-entropy", json={"logits": [[1, 2]], "target": [7]})
    await client.post("/v1/cross-entropy", json={"logits": [[1, 2]], "target": [0], "dtype": "int8"})
    after = (await client.get("/metrics")).text
    assert after.startswith("# HELP")

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("xent_requests_total", route="/v1/cross-entropy", status="200") == 1
    assert delta("xent_requests_total", route="/v1/cross-entropy", status="422") == 2
    assert delta("xent_request_duration_seconds_count", route="/v1/cross-entropy", status="200") == 1
    assert delta("xent_samples_total", route="/v1/cross-entropy") == 2
    assert delta("xent_elements_total", route="/v1/cross-entropy") == 6
    assert delta("xent_validation_failures_total", route="/v1/cross-entropy", kind="out_of_range") == 1
    assert delta("xent_validation_failures_total", route="/v1/cross-entropy", kind="literal_error") == 1
    assert _metric(after, "xent_requests_in_flight") == 1  # the scrape itself


async def test_unknown_paths_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    for path in ("/a", "/b", "/c"):
        await client.get(path)
    text = (await client.get("/metrics")).text
    assert 'route="unmatched"' in text
    assert 'route="/a"' not in text


async def test_a_request_cut_off_by_the_shutdown_timeout_gets_a_503_problem() -> None:
    """uvicorn cancels what is still running when XENT_SHUTDOWN_TIMEOUT runs out: the answer is a 503
    problem (retry elsewhere), not uvicorn's plain-text 500."""
    import asyncio

    from service.api.metrics import ServiceMetrics
    from service.api.middleware import RequestObserver

    started = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await asyncio.sleep(60)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/cross-entropy", "headers": []}
    task = asyncio.create_task(RequestObserver(slow_app, metrics=ServiceMetrics())(scope, receive, send))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 503
    body = json.loads(sent[1]["body"])
    assert body["type"] == "/problems/unavailable"
    assert body["detail"] == "the service is shutting down; retry the request"

"""XENT_ACCESS_LOG: every request, none, or a sample of the successes; straight to the process's writer
when the logging configuration makes it the access log's one destination."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from service.main import create_app
from service.observability import ACCESS_LOGGER, JsonFormatter, LogWriter
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
BAD = {"logits": [[1, 2]], "target": [5]}


async def _post(access_log: str, bodies: list[object]) -> list[int]:
    app = create_app(make_settings(access_log=access_log))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service.test"
    ) as client:
        return [(await client.post("/v1/cross-entropy", json=body)).status_code for body in bodies]


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


async def test_off_writes_no_access_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    assert await _post("off", [SEED, BAD]) == [200, 422]
    assert _access_records(caplog) == []


async def test_a_sample_keeps_every_error_and_a_share_of_the_successes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    statuses = await _post("sample:0.5", [*[SEED] * 200, *[BAD] * 20])
    assert statuses.count(422) == 20
    logged = [record.status for record in _access_records(caplog)]  # type: ignore[attr-defined]
    assert logged.count(422) == 20
    assert 50 <= logged.count(200) <= 150  # binomial(200, 0.5): outside this, about 1 in 10^12


async def test_the_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="access_log"):
        make_settings(access_log="sometimes")


@pytest.fixture
def writer() -> Iterator[tuple[LogWriter, io.StringIO]]:
    """The access logger as ``logging_config`` sets it up: one LogWriter, no propagation."""
    stream = io.StringIO()
    handler = LogWriter(stream, style="json")
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield handler, stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        handler.close()


async def test_the_writer_gets_the_line_without_a_log_record(
    writer: tuple[LogWriter, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, stream = writer
    logger = logging.getLogger(ACCESS_LOGGER)
    # pytest's own capture joins every non-propagating logger's handlers while a test runs: out of the
    # way for this one, so that the writer is the only destination, as in the serving process.
    others = [other for other in logger.handlers if other is not handler]
    made: list[logging.LogRecord] = []
    monkeypatch.setattr(logger, "handle", made.append)
    app = create_app(make_settings())
    for other in others:
        logger.removeHandler(other)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
            response = await client.post(
                "/v1/cross-entropy",
                json={"logits": [[123.456789, 0.0], [1.0, 2.0], [3.0, 4.0]], "target": [0, 1, 1]},
                headers={"x-request-id": "fast-1"},
            )
    finally:
        for other in others:
            logger.addHandler(other)
    assert response.status_code == 200
    handler.flush()
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert made == []  # no LogRecord was made
    assert line["request_id"] == "fast-1"
    assert line["message"] == "POST /v1/cross-entropy 200"
    assert (line["method"], line["route"], line["status"], line["batch_size"]) == (
        "POST",
        "/v1/cross-entropy",
        200,
        3,
    )
    assert line["duration_ms"] > 0
    assert line["level"] == "info"
    assert line["logger"] == ACCESS_LOGGER
    assert "123.456789" not in stream.getvalue()

"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from service.main import create_app
from service.settings import Settings
from tests.live import LiveServer, start_server, stop_server

# Property tests prove properties, not speed: a stall of a loaded machine (another process, a garbage
# collection) must not fail one. No deadline, no "too slow" health check; HYPOTHESIS_PROFILE chooses
# another registered profile (hypothesis's own "default", say, to see the timings again).
hypothesis_settings.register_profile(
    "steady", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "steady"))

#: Small limits, so that the tests can reach them cheaply.
TEST_LIMITS: dict[str, Any] = {"max_body_bytes": 2 * 1024 * 1024, "max_elements": 100_000}


def make_settings(**overrides: Any) -> Settings:
    """Settings from explicit values only: whatever XENT_* the test runner has set is ignored."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        return Settings(_env_file=None, **{**TEST_LIMITS, **overrides})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``python -m service`` for the whole session, stopped (and checked to exit 0) at the end."""
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    assert stop_server(server) == 0, server.output()


async def post_stalled(path: str, body: bytes, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST ``body`` to an app whose XENT_BODY_TIMEOUT is 0.2 s: ten bytes, then five seconds of silence."""
    import anyio

    async def stalling() -> AsyncIterator[bytes]:
        yield body[:10]
        await anyio.sleep(5)
        yield body[10:]

    transport = httpx.ASGITransport(app=create_app(make_settings(body_timeout=0.2)))
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        with anyio.fail_after(3):
            return await client.post(path, content=stalling(), headers=headers)

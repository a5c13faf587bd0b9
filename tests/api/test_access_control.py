"""API keys, public endpoints and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}


async def _client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(**settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client


@pytest.fixture
async def locked() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(api_keys="key-one,key-two"):
        yield client


async def test_open_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/cross-entropy", json=SEED)).status_code == 200


async def test_no_key_gets_401_with_a_challenge(locked: httpx.AsyncClient) -> None:
    response = await locked.post("/v1/cross-entropy", json=SEED)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="xent-service"'
    assert "Authorization: Bearer" in response.json()["detail"]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "header", ["Bearer wrong", "Bearer key-one-and-more", "Basic a2V5LW9uZQ==", "Bearer "]
)
async def test_a_wrong_key_gets_401(locked: httpx.AsyncClient, header: str) -> None:
    response = await locked.post("/v1/cross-entropy", json=SEED, headers={"authorization": header})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("key", ["key-one", "key-two"])
async def test_each_configured_key_works(locked: httpx.AsyncClient, key: str) -> None:
    response = await locked.post("/v1/cross-entropy", json=SEED, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200
    lowercase = await locked.post("/v1/cross-entropy", json=SEED, headers={"authorization": f"bearer {key}"})
    assert lowercase.status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/metrics", "/docs", "/openapi.json"])
async def test_health_metrics_and_docs_are_public_by_default(locked: httpx.AsyncClient, path: str) -> None:
    assert (await locked.get(path)).status_code == 200


async def test_metrics_and_docs_can_require_the_key() -> None:
    async for client in _client(api_keys="k", public_metrics=False, public_docs=False, public_health=False):
        for path in ("/metrics", "/openapi.json", "/health/ready"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers={"authorization": "Bearer k"})).status_code == 200


async def test_unknown_routes_do_not_reveal_themselves_without_a_key(locked: httpx.AsyncClient) -> None:
    assert (await locked.get("/v1/secret")).status_code == 401


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/cross-entropy", json=SEED, headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/v1/cross-entropy",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_without_cors_a_preflight_needs_a_key_like_any_request(locked: httpx.AsyncClient) -> None:
    preflight = await locked.options(
        "/v1/cross-entropy",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 401
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_the_configured_origins_even_with_keys() -> None:
    async for client in _client(api_keys="k", cors_origins="https://app.example"):
        preflight = await client.options(
            "/v1/cross-entropy",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        response = await client.post(
            "/v1/cross-entropy",
            json=SEED,
            headers={"origin": "https://app.example", "authorization": "Bearer k"},
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.options(
            "/v1/cross-entropy",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"

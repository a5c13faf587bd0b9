"""One list of middleware: what ``app.add_middleware`` adds wraps the lean routes' front door too."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


class Stamp:
    """Adds ``x-stamp: <label>`` to every response."""

    def __init__(self, app: ASGIApp, *, label: str) -> None:
        self.app = app
        self.label = label.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"x-stamp", self.label)]}
            await send(message)

        await self.app(scope, receive, stamped)


async def test_middleware_added_later_reaches_every_path() -> None:
    app = create_app(make_settings())
    app.add_middleware(Stamp, label="outer")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        lean = await client.post("/v1/cross-entropy", json={"logits": [[1.0, 2.0]], "target": [0]})
        other = await client.get("/health/live")
        focal = await client.post("/v1/focal-loss", json={"logits": [[1.0, 2.0]], "target": [0]})
    assert lean.status_code == other.status_code == focal.status_code == 200
    assert lean.headers["x-stamp"] == other.headers["x-stamp"] == focal.headers["x-stamp"] == "outer"
    # The service's own middleware still runs on the lean path, inside the new one.
    assert "x-request-id" in lean.headers and "server-timing" in lean.headers

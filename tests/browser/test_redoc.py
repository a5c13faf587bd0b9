"""ReDoc in a real browser, fully offline: it renders the whole reference with no request to a CDN."""

from __future__ import annotations

import pytest

from tests.browser.conftest import OfflinePage
from tests.live import LiveServer

pytestmark = pytest.mark.slow


def test_redoc_renders_the_reference_offline(offline_page: OfflinePage, live_server: LiveServer) -> None:
    from playwright.sync_api import expect

    page = offline_page.page
    page.goto(f"{live_server.url}/redoc")
    # ReDoc draws the operations from /openapi.json: its script, the spec and nothing else.
    operation = page.get_by_role(
        "heading", name="Multi-class cross-entropy (nn.CrossEntropyLoss / nn.NLLLoss)"
    )
    expect(operation.first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Open Inference Protocol").first).to_be_attached()
    loaded = {url.removeprefix(live_server.url) for url in offline_page.requested}
    assert {"/redoc", "/docs/redoc.standalone.js", "/openapi.json"} <= loaded
    offline_page.assert_clean()

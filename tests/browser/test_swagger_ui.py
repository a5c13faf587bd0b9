"""Swagger UI in a real browser, offline: the article's example, tried out and executed.

Headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright (the ``browser`` fixture of
``tests/browser/conftest.py``).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow


def test_the_seed_example_runs_in_swagger_ui_offline(browser: object, live_server: LiveServer) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server.url}/docs")
    operation = page.locator("#operations-losses-cross_entropy")
    expect(operation).to_be_visible(timeout=30_000)
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    examples = operation.locator(".opblock-section-request-body .examples-select select").first
    expect(examples).to_be_visible()
    selected = examples.evaluate("element => element.options[element.selectedIndex].textContent")
    assert "article" in selected and "3-class" in selected  # the seed example comes first
    operation.get_by_role("button", name="Execute").click()

    body = operation.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text('"loss"', timeout=30_000)
    rendered = json.loads(body.inner_text())
    assert round(rendered["loss"], 4) == 0.9185
    assert [round(value, 4) for value in rendered["losses"]] == [1.7413, 0.0957]
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    expect(status).to_have_text("200")

    hosts = {urlsplit(url).hostname for url in requested if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, f"the page reached beyond this machine: {sorted(set(requested))}"
    context.close()

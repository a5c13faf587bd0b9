"""Headless Chromium for the browser tests, and pages that cannot leave this machine.

Debian's Chromium (``/usr/bin/chromium``) driven by Playwright; Playwright's own browser download is
never used. ``scripts/test`` installs Chromium with apt when it is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Screenshots the browser tests keep (gitignored); CI can collect them as artefacts.
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

LOCAL_HOSTS = {"127.0.0.1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API runs an event loop in this thread while it
    # is open, and the async tests of other modules need the thread's loop to themselves.
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip(
            "BROWSER TEST NOT RUN: /usr/bin/chromium is missing (scripts/test installs Debian's "
            "chromium with apt; install it to run this test)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield launched
        launched.close()


@dataclass
class OfflinePage:
    """A page whose requests to any other host are refused, and which records what went wrong."""

    page: Page
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: HTTP statuses the test provokes on purpose: Chromium logs each as a console error.
    expected_statuses: set[int] = field(default_factory=set)

    def assert_clean(self) -> None:
        assert self.refused == [], f"the page tried to reach beyond this machine: {self.refused}"
        provoked = tuple(
            f"the server responded with a status of {status}" for status in self.expected_statuses
        )
        unexpected = [error for error in self.errors if not (provoked and provoked_by(error, provoked))]
        assert unexpected == [], f"the page logged errors: {unexpected}"


def provoked_by(error: str, provoked: tuple[str, ...]) -> bool:
    return error.startswith("Failed to load resource: ") and any(reason in error for reason in provoked)


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    """A fresh context and page; any request that leaves 127.0.0.1 fails (and fails the test)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    offline = OfflinePage(page)

    def route(route: Route) -> None:
        url = route.request.url
        offline.requested.append(url)
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            offline.refused.append(url)
            route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            offline.errors.append(message.text)

    context.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: offline.errors.append(f"uncaught: {error}"))
    yield offline
    context.close()


def serious_accessibility_violations(page: Page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in results.response["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]


def keep_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ and say where."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot kept: {path}")
    return path

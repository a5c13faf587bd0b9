"""The front page, the playground, their assets and the favicon, in process."""

from __future__ import annotations

import html
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from service.api import pages
from service.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}


class _Page(HTMLParser):
    """The links, scripts and stylesheets of a page, and whatever a strict CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.assets: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in attributes:
            if name.startswith("on") or name == "style":
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "a" and attributes.get("href"):
            self.links.append(str(attributes["href"]))
        if tag == "link" and attributes.get("href"):
            self.assets.append(str(attributes["href"]))
        if tag == "script":
            if attributes.get("src"):
                self.assets.append(str(attributes["src"]))
            else:
                self._in_script = True
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> with inline code")


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


async def _get(client: httpx.AsyncClient, path: str, accept: str = "text/html") -> httpx.Response:
    return await client.get(path, headers={"accept": accept})


async def test_the_front_page_links_everything_a_newcomer_needs(client: httpx.AsyncClient) -> None:
    response = await _get(client, "/", "text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    page = _parse(response.text)
    local = {link for link in page.links if not link.startswith("https://")}
    assert {"playground", "docs", "redoc", "openapi.json", "health/ready", "metrics"} <= local
    for link in sorted(local):
        assert (await client.get(f"/{link.removeprefix('./')}")).status_code == 200, link
    assert "python -m service" in response.text and "pip install" in response.text
    assert f"version {metadata.version('xent-service')}" in response.text


async def test_json_clients_get_a_json_index(client: httpx.AsyncClient) -> None:
    response = await _get(client, "/", "application/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    index = response.json()
    assert index["version"] == metadata.version("xent-service")
    links = index["links"]
    assert links["playground"] == "/playground" and links["openapi"] == "/openapi.json"
    for name, path in links.items():
        status = (await client.get(path)).status_code
        # The /v1 endpoints are POST-only: a GET finds the route and is told which method to use.
        assert status == (405 if path.startswith("/v1/") else 200), name


async def test_the_version_is_the_packages_and_the_openapi_documents(client: httpx.AsyncClient) -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file)["project"]["version"]
    assert pages.package_version() == declared
    assert (await client.get("/openapi.json")).json()["info"]["version"] == declared
    assert (await client.get("/v2")).json()["version"] == declared
    assert (await client.get("/", headers={"accept": "application/json"})).json()["version"] == declared


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        ("", False),
        ("*/*", False),
        ("text/html", False),
        ("application/json", True),
        ("application/*", True),
        ("application/json;q=0.5, text/html", False),
        ("application/json, text/html;q=0.9", True),
        ("text/html;q=0.9, application/json;q=0.9", False),
        ("text/*;q=0.2, application/json;q=0.3", True),
        ("application/json;q=0", False),
        ("application/json;q=oops, */*;q=0.1", False),
    ],
)
def test_which_clients_prefer_json(accept: str, json: bool) -> None:
    assert pages.prefers_json(accept) is json


@pytest.mark.parametrize("path", ["/", "/playground"])
async def test_pages_load_their_code_from_this_origin_only(client: httpx.AsyncClient, path: str) -> None:
    response = await _get(client, path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
    page = _parse(response.text)
    assert page.inline == [], "the Content-Security-Policy would block these"
    assert page.assets, "the page has a stylesheet"
    for asset in page.assets:
        assert not asset.startswith(("http:", "https:", "//", "/")), f"{asset} must be relative to the page"
        served = await client.get(f"/{asset}")
        assert served.status_code == 200, asset
        assert served.content, asset


async def test_the_playground_loads_its_script_and_styles(client: httpx.AsyncClient) -> None:
    page = _parse((await _get(client, "/playground")).text)
    assert set(page.assets) == {"favicon.ico", "static/site.css", "static/playground.js"}
    script = await client.get("/static/playground.js")
    assert script.headers["content-type"].startswith("text/javascript")
    # It posts to the service's own endpoints, relative to the page, so that a root path works too.
    assert '"v1/cross-entropy"' in script.text and '"v1/softmax"' in script.text
    styles = await client.get("/static/site.css")
    assert styles.headers["content-type"].startswith("text/css")


async def test_the_favicon(client: httpx.AsyncClient) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")


async def test_a_missing_asset_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/nothing.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def _locked(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(make_settings(api_keys="k", **settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client


PAGE_PATHS = ["/", "/playground", "/static/site.css", "/static/playground.js", "/favicon.ico"]


async def test_pages_are_public_like_the_docs_and_the_api_is_not() -> None:
    async for client in _locked():
        for path in PAGE_PATHS:
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/", headers={"accept": "application/json"})).status_code == 200
        # "/" is public as a path, not as a prefix.
        assert (await client.post("/v1/cross-entropy", json=SEED)).status_code == 401
        assert (await client.get("/v1/anything")).status_code == 401
        assert (await client.get("/playground-not")).status_code == 404


async def test_pages_need_the_key_when_the_docs_do() -> None:
    async for client in _locked(public_docs=False):
        for path in PAGE_PATHS:
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers={"authorization": "Bearer k"})).status_code == 200, path


def test_every_page_file_is_package_data() -> None:
    # A non-editable install (the container image, a wheel) carries only what these patterns match.
    with (ROOT / "pyproject.toml").open("rb") as file:
        patterns = tomllib.load(file)["tool"]["setuptools"]["package-data"]["service.api"]
    api = ROOT / "service" / "api"
    folders = [api / "static", api / "templates"]
    files = [path.relative_to(api).as_posix() for folder in folders for path in folder.iterdir()]
    assert {"static/playground.js", "static/favicon.svg", "templates/playground.html"} <= set(files)
    unshipped = [name for name in files if not any(fnmatch(name, pattern) for pattern in patterns)]
    assert unshipped == []


async def test_redoc_loads_a_script_that_names_no_other_host(client: httpx.AsyncClient) -> None:
    page = (await client.get("/redoc")).text
    assert '<script src="/docs/redoc.standalone.js">' in page
    script = await client.get("/docs/redoc.standalone.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert len(script.content) > 500_000  # the whole bundle, less one address
    assert b"cdn.redoc.ly" not in script.content


async def test_the_front_page_starts_the_service_as_the_readme_does(client: httpx.AsyncClient) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_command = readme.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()
    page = html.unescape((await client.get("/")).text)
    assert f"<pre><code>{first_command}</code></pre>" in page

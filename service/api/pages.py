"""The front page (``GET /``), the playground (``GET /playground``), their assets and the favicon.

The pages are plain HTML, CSS and JavaScript shipped with the package (``service/api/templates`` and
``service/api/static``, package data): no third-party code, no request to any other host. The
playground computes nothing itself: its script posts to the service's own ``/v1`` endpoints and draws
their answers as inline SVG. Every page is sent with a Content-Security-Policy that allows scripts,
styles and connections from this origin only, and no inline script.

``GET /`` answers with a short JSON index instead of the HTML page when the client prefers
``application/json`` to ``text/html`` (``Accept``), so that ``curl -H 'accept: application/json'``
and API clients find their way too.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from service import __version__

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PUBLIC_PAGE_PATHS",
    "PUBLIC_PAGE_PREFIXES",
    "install_pages",
    "package_version",
    "prefers_json",
]

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
STATIC_PATH = "/static"

#: Paths the pages answer on; public (no API key) whenever the documentation is (``XENT_PUBLIC_DOCS``).
PUBLIC_PAGE_PATHS: Final = ("/",)
PUBLIC_PAGE_PREFIXES: Final = ("/playground", f"{STATIC_PATH}/", "/favicon.ico")

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS: Final = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Vary": "Accept"}

#: Where the JSON index points, relative to the service's root.
LINKS: Final = {
    "playground": "/playground",
    "docs": "/docs",
    "redoc": "/redoc",
    "openapi": "/openapi.json",
    "health": "/health/ready",
    "metrics": "/metrics",
    "cross_entropy": "/v1/cross-entropy",
    "binary_cross_entropy": "/v1/binary-cross-entropy",
    "softmax": "/v1/softmax",
    "divergence": "/v1/divergence",
    "open_inference_protocol": "/v2",
}


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, through the package metadata)."""
    return __version__


def _quality(media_range: str) -> tuple[str, float]:
    kind, *parameters = (part.strip() for part in media_range.split(";"))
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return kind.lower(), quality


def prefers_json(accept: str) -> bool:
    """Whether an ``Accept`` header ranks ``application/json`` above ``text/html``.

    Each type's quality is its most specific matching range's (``text/html`` before ``text/*`` before
    ``*/*``, as RFC 9110 says); a tie, and no ``Accept`` at all, goes to the page.
    """
    ranges = dict(_quality(part) for part in accept.split(",") if part.strip())

    def quality(kind: str) -> float:
        major = kind.split("/")[0]
        for candidate in (kind, f"{major}/*", "*/*"):
            if candidate in ranges:
                return ranges[candidate]
        return 0.0

    return quality("application/json") > quality("text/html")


def _page(template: str, version: str) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return text.replace("{{version}}", html.escape(version))


def install_pages(app: FastAPI) -> None:
    """``/`` (front page or JSON index), ``/playground``, ``/favicon.ico`` and ``/static``."""
    version = package_version()
    index_page = _page("index.html", version)
    playground_page = _page("playground.html", version)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def front_page(request: Request) -> Response:
        if prefers_json(request.headers.get("accept", "")):
            root = request.scope.get("root_path", "").rstrip("/")
            index = {
                "name": "xent-service",
                "description": app.summary,
                "version": version,
                "links": {name: f"{root}{path}" for name, path in LINKS.items()},
            }
            return JSONResponse(index, headers={"Vary": "Accept"})
        return HTMLResponse(index_page, headers=_PAGE_HEADERS)

    @app.get("/playground", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(playground_page, headers=_PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

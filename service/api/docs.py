"""Swagger UI and ReDoc served from this process, with no request to any other host.

FastAPI's default pages load their JavaScript and CSS from a CDN (and a favicon from fastapi's site):
offline, in an air-gapped cluster or behind a strict proxy they are blank. The assets here come from
the ``fastapi-offline`` package (Swagger UI 5, which renders OpenAPI 3.1, and ReDoc), installed with the
service; nothing third-party is vendored in this repository. Swagger UI's online spec validator is
turned off for the same reason, and ReDoc's script is served without the one address it would fetch
whatever its options say (see ``offline_redoc_script``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_docs", "offline_redoc_script"]

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs/assets"
REDOC_SCRIPT_PATH = "/docs/redoc.standalone.js"
REDOCLY_LOGO_URL = b"https://cdn.redoc.ly/redoc/logo-mini.svg"

SWAGGER_UI_PARAMETERS = {
    "validatorUrl": None,  # the default would ask validator.swagger.io about our spec
    "displayRequestDuration": True,
    "defaultModelsExpandDepth": 0,
    "tryItOutEnabled": False,
}


@cache
def offline_redoc_script() -> bytes:
    """ReDoc's standalone bundle, without its request to cdn.redoc.ly.

    ReDoc draws a "Redocly" logo in its side menu from ``cdn.redoc.ly`` whatever its options say:
    offline that request hangs or fails, and it tells a third party who reads the docs. Without an
    address the image fails at once, and ReDoc's own error handler hides it.
    """
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOCLY_LOGO_URL, b"")


def install_docs(app: FastAPI, *, title: str) -> None:
    """``/docs`` (Swagger UI), ``/redoc`` and their assets under ``/docs/assets``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(REDOC_SCRIPT_PATH, include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(offline_redoc_script(), media_type="text/javascript")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_SCRIPT_PATH}",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

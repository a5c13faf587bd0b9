"""Swagger UI and ReDoc served from this process, with no request to any other host.

FastAPI's default pages load their JavaScript and CSS from a CDN (and a favicon from fastapi's site):
offline, in an air-gapped cluster or behind a strict proxy they are blank. The assets here come from
the ``fastapi-offline`` package (Swagger UI 5, which renders OpenAPI 3.1, and ReDoc), installed with the
service; nothing third-party is vendored in this repository. Swagger UI's online spec validator is
turned off for the same reason.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_docs"]

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs/assets"

SWAGGER_UI_PARAMETERS = {
    "validatorUrl": None,  # the default would ask validator.swagger.io about our spec
    "displayRequestDuration": True,
    "defaultModelsExpandDepth": 0,
    "tryItOutEnabled": False,
}


def install_docs(app: FastAPI, *, title: str) -> None:
    """``/docs`` (Swagger UI), ``/redoc`` and their assets under ``/docs/assets``."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

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
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

"""The OpenAPI document: FastAPI's, with every error response declared as RFC 9457 problem+json."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.errors import PROBLEM_CONTENT_TYPE

__all__ = ["PROBLEM_RESPONSES", "build_openapi", "openapi_text"]

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetail"}

#: Error responses every lean JSON operation can give, with the reason each happens.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request framing (a Content-Length that is not a number)."},
    401: {"description": "No valid API key (only when the service is configured with XENT_API_KEYS)."},
    408: {"description": "No part of the body arrived for XENT_BODY_TIMEOUT seconds."},
    413: {"description": "The body is larger than XENT_MAX_BODY_BYTES."},
    415: {
        "description": "The Content-Type is not application/json, or the body is compressed "
        "(Content-Encoding)."
    },
    422: {"description": ("Invalid content: the problem's `errors` name each field, position and problem.")},
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """Generate (once) and return the app's OpenAPI 3.1 document."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        license_info=app.license_info,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    schema["components"]["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "Needed only when the service runs with XENT_API_KEYS set.",
        }
    }
    # Optional: the empty requirement means "no key" is also acceptable, as it is by default.
    schema["security"] = [{}, {"apiKey": []}]
    for operation in _operations(schema):
        for status, response in operation.get("responses", {}).items():
            if status[0] in "45":
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}
    # FastAPI's own validation-error schemas describe a body this service never sends.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return [
        operation
        for path_item in schema.get("paths", {}).values()
        for method, operation in path_item.items()
        if method in methods
    ]


def openapi_text() -> str:
    """The document as committed in openapi/openapi.json: default settings, stable formatting."""
    from service.main import create_app  # the app module imports this one
    from service.settings import Settings

    document = create_app(Settings.model_construct()).openapi()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

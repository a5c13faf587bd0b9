"""The OpenAPI document: FastAPI's, completed with everything the service really sends.

FastAPI documents each route's own answers (its 200 model and the errors the route declares). This
module adds what the layers around the routes send, in one place each:

* ``EVERY_OPERATION``: statuses any operation can answer whatever its route does (access control;
  the transport's limits when they are added: the table is where they go);
* ``HEADERS``: the response headers, and ``ALWAYS_SENT`` those the middleware puts on every answer;
* error bodies as RFC 9457 ``application/problem+json``.

What the service never sends is not declared: FastAPI's 422 validation-error schema, a 400 for
malformed framing on /v1 (uvicorn answers it itself, in plain text, before the app sees the request).
"""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.errors import PROBLEM_CONTENT_TYPE

__all__ = [
    "ALWAYS_SENT",
    "EVERY_OPERATION",
    "HEADERS",
    "PROBLEM_RESPONSES",
    "SECURITY_SCHEME",
    "TAGS",
    "build_openapi",
    "openapi_text",
]

_PROBLEM_REF: Final = "#/components/schemas/ProblemDetail"
SECURITY_SCHEME: Final = "bearerAuth"
#: Relative: the origin that serves the document (Swagger UI's "Try it out" calls the service it is on;
#: a generated client is given its base URL).
_SERVERS: Final = [{"url": "/", "description": "The service that serves this document."}]


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


#: The operations' groups: the generated clients' modules.
TAGS: Final = [
    {"name": "losses", "description": "Loss functions and their gradients."},
    {
        "name": "inference",
        "description": "The Open Inference Protocol (KServe v2): the same models for Triton's and KServe's "
        "clients.",
    },
    {"name": "operations", "description": "Health probes and metrics for operators."},
]

#: Every response header the service sends, declared once (``components/headers``).
HEADERS: Final[dict[str, dict[str, Any]]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's X-Request-ID when it is sane, else a new one "
        "(also `request_id` in problem details and in the access log).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Server-Timing": {
        "description": "W3C Server Timing: `app;dur=` milliseconds from the request's arrival to its "
        "answer being ready.",
        "required": True,
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {
        "description": "`nosniff`: browsers take the Content-Type as it is.",
        "required": True,
        "schema": {"type": "string", "enum": ["nosniff"]},
    },
    "Cache-Control": {
        "description": "`no-store`: answers are computed per request and never cached.",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750).",
        "required": True,
        "schema": {"type": "string"},
    },
    "Accept-Post": {
        "description": "The media type the operation reads: application/json.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying (with a 503 for a full memory budget).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Inference-Header-Content-Length": {
        "description": "Length in bytes of the JSON header; the binary tensors follow it (sent with "
        "`application/octet-stream` answers only).",
        "schema": {"type": "integer", "minimum": 0},
    },
}

#: Headers the middleware (``RequestObserver``) puts on every answer.
ALWAYS_SENT: Final = ("X-Request-ID", "Server-Timing", "X-Content-Type-Options", "Cache-Control")

#: Error responses every lean /v1 JSON operation can give, with the reason each happens.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"description": "No part of the body arrived for XENT_BODY_TIMEOUT seconds."},
    413: {"description": "The body is larger than XENT_MAX_BODY_BYTES."},
    415: {
        "description": "The Content-Type is not application/json, or the body is compressed "
        "(Content-Encoding).",
        "headers": {"Accept-Post": _header("Accept-Post")},
    },
    422: {"description": ("Invalid content: the problem's `errors` name each field, position and problem.")},
}

#: Inline enums that become one named schema (generated code gets one enum type, not one per model),
#: by field name; an `outputs` enum is named after its model (`CrossEntropyRequest`: `CrossEntropyOutput`).
ENUM_NAMES: Final = {
    "reduction": "Reduction",
    "dtype": "ComputeDtype",
    "datatype": "TensorDatatype",
    "status": "HealthStatus",
}

#: Statuses any operation can answer, whatever its route does. (The server's own answers before a
#: request reaches an operation, 431, 408 and 503 for the request head and the connection cap, are
#: said in the document's description: they carry none of the operations' headers.)
EVERY_OPERATION: Final[dict[str, dict[str, Any]]] = {
    "401": {
        "description": "No valid API key. Only when the service runs with XENT_API_KEYS set, and not on "
        "the health probes (XENT_PUBLIC_HEALTH) or /metrics (XENT_PUBLIC_METRICS) when those are public.",
        "headers": {"WWW-Authenticate": _header("WWW-Authenticate")},
    },
    "503": {
        "description": "The service is shutting down and XENT_SHUTDOWN_TIMEOUT ran out before the answer "
        "(retry elsewhere), or, for a large request, the memory budget stayed full for XENT_MEMORY_WAIT "
        "seconds (with Retry-After).",
        "headers": {"Retry-After": _header("Retry-After")},
    },
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
        servers=_SERVERS,
    )
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key, needed only when the service runs with XENT_API_KEYS set.",
        }
    }
    components["headers"] = HEADERS
    # Optional: the empty requirement means "no key" is also acceptable, as it is by default.
    schema["security"] = [{}, {SECURITY_SCHEME: []}]
    for operation in _operations(schema):
        _complete_responses(operation["responses"])
        for parameter in operation.get("parameters", ()):
            _absent_not_null(parameter)
    _integer_bounds(schema)
    _defaults_in_descriptions(schema)
    _name_enums(schema["components"]["schemas"])
    components["schemas"] = dict(sorted(components["schemas"].items()))
    # FastAPI's own validation-error schemas describe a body this service never sends.
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    app.openapi_schema = schema
    return schema


def _complete_responses(responses: dict[str, Any]) -> None:
    """Add the statuses every operation can send, problem+json error bodies, and the headers."""
    # FastAPI's own 422 (for path parameters) describes a body this service never sends.
    if "HTTPValidationError" in json.dumps(responses.get("422", {})):
        del responses["422"]
    for status, response in EVERY_OPERATION.items():
        responses.setdefault(status, json.loads(json.dumps(response)))
    for status, response in responses.items():
        if status[0] in "45":
            content = response.get("content", {})
            own = content.get("application/json", {}).get("schema", {"$ref": _PROBLEM_REF})
            if own["$ref"].endswith(("/ProblemDetail", "/InferenceProblem")):
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": own}}
        headers = response.setdefault("headers", {})
        for name in ALWAYS_SENT:
            headers[name] = _header(name)


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


def _integer_bounds(node: Any) -> None:
    """Write integer schemas' bounds as integers (pydantic writes floats: 9.223372036854776e+18 is not
    2**63), an exclusive bound of 2**63 as ``maximum`` 2**63 - 1 with ``format: int64``."""
    if isinstance(node, list):
        for item in node:
            _integer_bounds(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(node.get(key), float):
                node[key] = int(node[key])
        if node.get("exclusiveMaximum") == 2**63:
            del node["exclusiveMaximum"]
            node["maximum"] = 2**63 - 1
            node["format"] = "int64"
    for value in node.values():
        _integer_bounds(value)


def _defaults_in_descriptions(schema: dict[str, Any]) -> None:
    """A request field's default, said in its description rather than as JSON Schema ``default``.

    openapi-typescript (with its default ``defaultNonNullable``) makes a property with a ``default``
    required in the generated type, so every request would have to spell out every option."""
    schemas = schema["components"]["schemas"]
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for operation in _operations(schema)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    for name in bodies:
        for field in schemas[name].get("properties", {}).values():
            if "default" not in field:
                continue
            default, description = json.dumps(field.pop("default")), field.get("description", "")
            if "default" not in description.lower():  # else the description says it already
                field["description"] = f"{description.rstrip()} Default: `{default}`.".lstrip()


def _name_enums(schemas: dict[str, Any]) -> None:
    """Move the inline enums of ``ENUM_NAMES`` fields and of ``outputs`` into named schemas."""
    for model_name, model in list(schemas.items()):
        for field, prop in model.get("properties", {}).items():
            if field == "outputs" and "enum" in prop.get("items", {}):
                name = model_name.removesuffix("Request") + "Output"
                prop["items"] = _named_enum(schemas, name, prop["items"])
            elif field in ENUM_NAMES and "enum" in prop:
                model["properties"][field] = _named_enum(schemas, ENUM_NAMES[field], prop)


def _named_enum(schemas: dict[str, Any], name: str, inline: dict[str, Any]) -> dict[str, Any]:
    enum = {"type": inline.get("type", "string"), "enum": inline["enum"]}
    if schemas.setdefault(name, enum) != enum:
        raise ValueError(f"two different enums would be named {name}: {schemas[name]} and {enum}")
    kept = {key: value for key, value in inline.items() if key not in {"type", "enum", "title"}}
    return {"$ref": f"#/components/schemas/{name}", **kept}


def _absent_not_null(parameter: dict[str, Any]) -> None:
    """An optional header is absent, never null: ``int | None`` documents just the integer."""
    schema = parameter["schema"]
    choices = [choice for choice in schema.get("anyOf", ()) if choice != {"type": "null"}]
    if not parameter.get("required") and len(choices) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        schema.update(choices[0])

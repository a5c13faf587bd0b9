"""One place that turns every error into an RFC 9457 ``application/problem+json`` body.

A problem has ``type`` (a URI reference naming the kind of problem), ``title`` (the HTTP reason),
``status``, ``detail`` (a sentence a person can act on) and, for invalid content, ``errors``: a list of
``{loc, msg, type}`` naming each field, position and problem. Input is never echoed back beyond the one
offending value a message quotes, and no stack trace ever leaves the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from service.core import InvalidInputError, Issue, Loc, format_loc
from service.observability import REQUEST_ID

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Problem",
    "install_error_handlers",
    "issues_from_validation_error",
    "problem_from_invalid_input",
    "problem_from_validation_error",
]

logger = logging.getLogger("service.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
_PROBLEM_TYPE_BYTES = PROBLEM_CONTENT_TYPE.encode()

#: Problem ``type`` for each status this service emits; relative references, documented in the README.
PROBLEM_TYPES: dict[int, str] = {
    400: "/problems/bad-request",
    401: "/problems/unauthorized",
    404: "/problems/not-found",
    405: "/problems/method-not-allowed",
    408: "/problems/request-timeout",
    413: "/problems/content-too-large",
    415: "/problems/unsupported-media-type",
    422: "/problems/invalid-input",
    431: "/problems/request-header-fields-too-large",
    500: "/problems/internal-error",
    503: "/problems/unavailable",
}

#: At most this many field errors go into one problem body.
MAX_ERRORS = 20


class Problem(Exception):
    """An HTTP error with everything its problem+json body needs; raise it or render it."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[Issue] = (),
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = headers or {}
        # RFC 9457 extension members, e.g. the Open Inference Protocol's {"error": "..."}.
        self.extensions = extensions or {}

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": PROBLEM_TYPES.get(self.status, "about:blank"),
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            payload["errors"] = [
                {"loc": list(issue.loc), "msg": issue.msg, "type": issue.kind}
                for issue in self.errors[:MAX_ERRORS]
            ]
        request_id = REQUEST_ID.get()
        if request_id != "-":
            payload["request_id"] = request_id
        payload.update(self.extensions)
        return payload

    def kinds(self) -> list[str]:
        """What went wrong, for the metrics: each field problem's kind, or the problem type's name."""
        if self.errors:
            return [issue.kind for issue in self.errors]
        return [PROBLEM_TYPES.get(self.status, "/problems/other").rsplit("/", 1)[-1].replace("-", "_")]

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.body())

    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """Its own headers (``WWW-Authenticate``, ``Allow``, ...) as ASGI sends them."""
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()
        ]

    async def send(self, send: Send) -> None:
        """Write it to an ASGI ``send`` (where no Starlette ``Response`` is at hand, as in middleware)."""
        body = self.to_bytes()
        headers = [(b"content-type", _PROBLEM_TYPE_BYTES), (b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": self.status, "headers": headers + self.wire_headers()}
        )
        await send({"type": "http.response.body", "body": body})

    def to_response(self) -> Response:
        return Response(
            self.to_bytes(),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_CONTENT_TYPE,
        )


def _summary(issues: Sequence[Issue]) -> str:
    first = issues[0].msg
    if len(issues) == 1:
        return first
    return f"{first} (and {len(issues) - 1} more problem{'s' if len(issues) > 2 else ''})"


def problem_from_invalid_input(error: InvalidInputError) -> Problem:
    return Problem(422, _summary(error.issues), errors=error.issues)


# pydantic's messages, reworded where they would not tell a client what to do.
_PYDANTIC_MESSAGES = {
    "missing": "field required",
    "extra_forbidden": "unknown field; see the API reference for the accepted fields",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "bool_type": "must be true or false",
}


def _pydantic_issue(error: Any) -> Issue:
    context = error.get("ctx") or {}
    loc: Loc = tuple(error.get("loc", ())) + tuple(context.get("path", ()))
    kind = str(error.get("type", "invalid"))
    if kind.startswith("json_"):
        return Issue((), f"the body is not valid JSON: {error['msg']}", "json_invalid")
    msg = _PYDANTIC_MESSAGES.get(kind, str(error.get("msg", "invalid value")))
    if "detail" in context:
        return Issue(loc, str(context["detail"]), kind)
    if kind == "too_long" and "max_length" in context:
        where = format_loc(loc)
        msg = (
            f"{context.get('actual_length', 'too many')} items; at most {context['max_length']} are accepted"
        )
        return Issue(loc, f"{where}: {msg}" if where else msg, kind)
    if kind == "extra_forbidden" and loc == ("labels",):
        # With AliasChoices("target", "labels"), a body with both keys reads `target` and leaves
        # `labels` over.
        return Issue(
            loc, "send the target as either `target` or its alias `labels`, not both", "alias_conflict"
        )
    where = format_loc(loc)
    return Issue(loc, f"{where}: {msg}" if where else msg, kind)


def issues_from_validation_error(error: ValidationError | RequestValidationError) -> list[Issue]:
    raw: Iterable[Any] = error.errors()
    if isinstance(error, RequestValidationError):
        # FastAPI prefixes locations with where the value came from; a body field is named alone.
        raw = [
            {**item, "loc": tuple(item.get("loc", ()))[1:]}
            if tuple(item.get("loc", ()))[:1] == ("body",)
            else item
            for item in raw
        ]
    return [_pydantic_issue(item) for item in raw]


def problem_from_validation_error(error: ValidationError | RequestValidationError) -> Problem:
    issues = issues_from_validation_error(error)
    if not issues:
        issues = [Issue((), "the request is invalid", "invalid")]
    return Problem(422, _summary(issues), errors=issues)


def _shorten(path: str, limit: int = 100) -> str:
    """A path as echoed in an error: a client's 8 KB path is not worth echoing in full."""
    return path if len(path) <= limit else path[:limit] + "..."


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    path = _shorten(request.url.path)
    if status == 404:
        detail = f"no such resource: {path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow", "")
        detail = f"{request.method} is not allowed on {path}"
        if allowed:
            detail += f"; allowed: {allowed}"
    else:
        detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return Problem(status, detail, headers=dict(exc.headers or {})).to_response()


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_from_validation_error(exc).to_response()


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.to_response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, not a client error: log it with its traceback here, and tell the client nothing more.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    problem = Problem(500, "the service failed to handle this request; it has been logged")
    return problem.to_response()


def install_error_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or Starlette can raise through ``Problem``."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(Exception, _unexpected)

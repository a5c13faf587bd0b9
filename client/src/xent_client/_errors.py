"""What can go wrong, as exceptions: the service's problem+json answers, and failures to reach it."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ErrorItem", "ProblemError", "ServiceUnavailableError", "TransportError", "XentError"]


class XentError(Exception):
    """Every error this client raises."""


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One problem with the request's content: where (``loc``, e.g. ``("target", 1)``), what, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class ProblemError(XentError):
    """An error answer of the service (RFC 9457 problem+json, or whatever a proxy in between sent).

    ``status`` is the HTTP status; ``type``, ``title``, ``detail`` and ``request_id`` are the
    problem's members (``request_id`` falls back to the ``X-Request-ID`` header); ``errors`` lists
    the field errors of invalid content (422 on /v1, 400 on /v2).
    """

    def __init__(
        self,
        status: int,
        *,
        type: str,
        title: str,
        detail: str,
        errors: tuple[ErrorItem, ...] = (),
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors
        self.request_id = request_id
        super().__init__(f"{status} {title}: {detail}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> ProblemError:
        """The problem a response carries; a body that is not problem+json (a proxy's HTML page, say)
        still gives the status, with the first line of the body as the detail."""
        status = response.status_code
        title = response.reason_phrase or "Error"
        header_id = response.headers.get("x-request-id")
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(response.content)
        if not isinstance(body, dict):
            text = response.content[:2000].decode("utf-8", "replace")
            title_tag = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            lines = text.strip().splitlines()
            if title_tag:  # a proxy's HTML page (nginx: "413 Request Entity Too Large")
                detail = " ".join(title_tag.group(1).split())
            else:
                detail = lines[0][:200] if lines else f"HTTP {status} with an empty body"
            return cls(status, type="about:blank", title=title, detail=detail, request_id=header_id)
        items = tuple(
            ErrorItem(
                loc=tuple(part for part in item.get("loc", ()) if isinstance(part, str | int)),
                msg=str(item.get("msg", "")),
                type=str(item.get("type", "")),
            )
            for item in body.get("errors") or ()
            if isinstance(item, dict)
        )
        detail = body.get("detail") or body.get("error") or title
        return cls(
            status,
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", title)),
            detail=str(detail),
            errors=items,
            request_id=str(body["request_id"]) if body.get("request_id") else header_id,
        )


class ServiceUnavailableError(ProblemError):
    """A retryable answer (408, 429, 502, 503, 504) that was still the answer after every retry."""


class TransportError(XentError):
    """The service could not be reached or the connection broke, after every retry."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)

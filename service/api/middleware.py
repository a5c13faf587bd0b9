"""Plain ASGI middleware: request ids, access logs, metrics, security headers, API keys.

Written against the ASGI interface directly rather than Starlette's ``BaseHTTPMiddleware``: no
Request/Response objects and no extra task per request, so a small request pays a few microseconds
for all of it.

``RequestObserver`` (outermost) gives every request an id (the client's ``X-Request-ID`` when it is a
sane token, a fresh one otherwise) and returns it on every response, adds ``X-Content-Type-Options:
nosniff``, ``Cache-Control: no-store`` and ``Server-Timing`` (how long the answer took to be ready),
counts the request in the metrics, writes one access-log line
(method, route, status, duration, batch size, request id; never a body; all of them, none, or a
sample of the successes, see ``access_rate``) and is the last line of defence: an exception that
escapes the app becomes a logged 500 problem, never a stack trace.
``BearerAuth`` (inner) checks ``Authorization: Bearer <key>`` against the configured keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import random
import re
import time
from collections.abc import Iterable
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import Problem
from service.api.metrics import ServiceMetrics
from service.observability import ACCESS_LOGGER, REQUEST_ID, AccessRecord, LogWriter

__all__ = ["CLIENT_CLOSED_REQUEST", "BearerAuth", "HeadAsGet", "RequestObserver", "request_state"]

logger = logging.getLogger("service.errors")
access_logger = logging.getLogger(ACCESS_LOGGER)

_SANE_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_ALWAYS: Final = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))
_PROBLEM: Final = b"application/problem+json"
#: nginx's status for a request whose client went away before it was answered: logged and counted as
#: such, never sent (there is no one to send it to).
CLIENT_CLOSED_REQUEST: Final = 499


# Generated ids: a random 64-bit prefix per process and a counter, 32 hex digits like a UUID's, unique
# across replicas without asking the operating system for randomness on every request.
_ID_PREFIX: Final = os.urandom(8).hex()
_id_counter = itertools.count(1)


def _new_request_id() -> bytes:
    return f"{_ID_PREFIX}{next(_id_counter):016x}".encode()


def request_state(scope: Scope) -> dict[str, Any]:
    """Per-request facts shared between the routes and the middleware (``scope["state"]``)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    # Only known route templates become labels: arbitrary paths would blow up the metric cardinality.
    return getattr(route, "path", None) or "unmatched"


class HeadAsGet:
    """``HEAD`` is answered wherever ``GET`` is (RFC 9110, 9.3.2): as ``GET``, with the same status
    and headers and no body. Routes that do not take ``GET`` answer 405 as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


class RequestObserver:
    """``access_rate``: the share of requests answered below 400 whose access line is written (1: all,
    0: none, and then no line at all); a 4xx or 5xx answer is always written unless it is 0."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, access_rate: float = 1.0) -> None:
        self.app = app
        self.metrics = metrics
        self.access_rate = access_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        request_id_text = request_id.decode("ascii")
        token = REQUEST_ID.set(request_id_text)
        state = request_state(scope)
        state["request_id"] = request_id_text
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                # Time from the request's arrival to its answer being ready: receive, parse, compute,
                # serialise (W3C Server Timing); for a large answer streamed in pieces, until it is
                # computed, before the pieces are written. The latency histogram times it all.
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.3f}".encode()
                headers = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id),
                    (b"server-timing", timing),
                    *_ALWAYS,
                ]
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500  # also when a streamed answer broke off after its status line went out
            if not response_started:
                problem = Problem(500, "the service failed to handle this request; it has been logged")
                await problem.send(send_with_headers)
        except asyncio.CancelledError:
            # The server is shutting down and XENT_SHUTDOWN_TIMEOUT has run out: say so in a problem
            # (503, worth a retry elsewhere) rather than leave uvicorn's plain-text 500.
            status = 503
            if not response_started:
                problem = Problem(503, "the service is shutting down; retry the request")
                with contextlib.suppress(Exception):
                    await problem.send(send_with_headers)
            raise
        finally:
            if not response_started and state.get("client_gone"):
                status = CLIENT_CLOSED_REQUEST  # the client's doing, not a server error
            self.metrics.in_flight.dec()
            self._record(scope, state, status, time.perf_counter() - started, request_id_text)
            REQUEST_ID.reset(token)

    def _record(
        self, scope: Scope, state: dict[str, Any], status: int, seconds: float, request_id: str
    ) -> None:
        """The request in the metrics and the access log."""
        route = _route_name(scope)
        samples, elements = state.get("workload", (0, 0))
        self.metrics.observe(
            method=scope["method"],
            route=route,
            status=status,
            seconds=seconds,
            samples=samples,
            elements=elements,
            problem_kinds=state.get("problem_kinds", ()),
        )
        rate = self.access_rate
        if rate >= 1.0 or (rate > 0.0 and (status >= 400 or random.random() < rate)):
            _log_access(scope, route, status, seconds, samples, request_id)


def _request_id(scope: Scope) -> bytes:
    """The client's X-Request-ID when it is sane, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_REQUEST_ID.fullmatch(value):
            request_id: bytes = value
            return request_id
    return _new_request_id()


def _log_access(scope: Scope, route: str, status: int, seconds: float, samples: int, request_id: str) -> None:
    """One access-log line: straight to the process's ``LogWriter`` when it is the access logger's one
    destination (as ``logging_config`` sets it up), as a ``LogRecord`` otherwise (tests, embedders)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    handlers = access_logger.handlers
    if not access_logger.propagate and len(handlers) == 1 and type(handlers[0]) is LogWriter:
        record: AccessRecord = (
            time.time(),
            scope["method"],
            scope["path"],
            route,
            status,
            seconds,
            samples,
            scope.get("client"),
            request_id,
        )
        handlers[0].access(record)
        return
    access_logger.info(
        "%s %s %d",
        scope["method"],
        scope["path"],
        status,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "batch_size": samples,
            "client": (scope.get("client") or ("-",))[0],
            "request_id": request_id,
        },
    )


class BearerAuth:
    """``Authorization: Bearer <key>``, compared in constant time against every configured key.

    CORS preflights carry no credentials; CORSMiddleware, outside this layer, answers them itself
    when CORS is configured. Without CORS an OPTIONS request is like any other and needs a key.
    ``public_prefixes`` need no key, nor do ``public_paths``, matched whole (the front page, ``/``,
    cannot be a prefix).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Iterable[str],
        public_prefixes: Iterable[str],
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        # Comparing digests makes every comparison the same length, so timing reveals nothing.
        self.digests = [hashlib.sha256(key.encode()).digest() for key in keys]
        self.public_prefixes = tuple(public_prefixes)
        self.public_paths = frozenset(public_paths)

    def _authorized(self, scope: Scope) -> tuple[bool, bool]:
        """(authorized, a credential was presented)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer" or not token.strip():
                    return False, True
                digest = hashlib.sha256(token.strip()).digest()
                matched = False
                for known in self.digests:
                    matched |= hmac.compare_digest(digest, known)
                return matched, True
        return False, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.digests
            or scope["path"].startswith(self.public_prefixes)
            or scope["path"] in self.public_paths
        ):
            await self.app(scope, receive, send)
            return
        authorized, presented = self._authorized(scope)
        if authorized:
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="xent-service"'
        if presented:
            challenge += ', error="invalid_token"'
        detail = (
            "the API key is not valid"
            if presented
            else "this service needs an API key: send Authorization: Bearer <key>"
        )
        request_state(scope)["problem_kinds"] = ["unauthorized"]
        await Problem(401, detail, headers={"WWW-Authenticate": challenge}).send(send)

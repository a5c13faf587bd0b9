"""FastAPI routes with a lean transport: raw body -> request model -> endpoint -> orjson bytes.

FastAPI documents the route from its endpoint's signature (request model, response model, examples)
exactly as for any route. Serving it skips what costs the most on this path and adds nothing here:
Starlette's Request/Response objects, the dependency machinery, the standard-library JSON parser,
per-element validation of large arrays and ``jsonable_encoder``. Instead the body bytes go straight to
a JSON parser (``service.api.json_request``: orjson or pydantic-core's, by size), arrays become NumPy
once (``service.api.arrays``), and the endpoint's result, NumPy arrays included, is serialised by orjson.

Large bodies are parsed, computed and serialised in a worker thread, at most
``XENT_COMPUTE_CONCURRENCY`` at a time per process (admitted once their bodies are read), so that the
event loop keeps answering small requests and health checks while a big batch is being crunched; what
they hold, from the first byte of the body to the last byte of the answer, counts against the
process's memory budget (``service.budget``).

``RawBodyRoute`` is the transport (framing checks, size limit, offloading, sending); ``LeanJSONRoute``
adds the JSON endpoints' body -> model -> endpoint -> JSON. Other protocols subclass ``RawBodyRoute``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.to_thread
import numpy as np
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from service.api.admission import BodyDeadlines, ComputeGate, reserve
from service.api.arrays import ArrayLimits, tensor_fields
from service.api.bulk_json import BULK_MIN_BODY_BYTES as BULK_MIN_BODY_BYTES  # here too, as before
from service.api.errors import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    problem_from_invalid_input,
    problem_from_validation_error,
)
from service.api.json_request import parse_json_request
from service.api.middleware import request_state
from service.api.payloads import json_body, numbers_in
from service.api.schemas import known_keys
from service.budget import MemoryBudget, Reservation
from service.core import InvalidInputError

__all__ = ["BodyDeadlines", "ComputeGate", "LeanJSONRoute", "RawBodyRoute", "Reply", "TransportLimits"]

logger = logging.getLogger("service.transport")

JSON_CONTENT_TYPE = b"application/json"
_PROBLEM_CONTENT_TYPE = PROBLEM_CONTENT_TYPE.encode()
#: Memory one number of a JSON request may hold, at most, from its body to its answer (``cost``).
BYTES_PER_NUMBER: Final = 48


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """What one request may cost: body size, array size, and when to leave the event loop."""

    max_body_bytes: int
    arrays: ArrayLimits
    offload_bytes: int
    gate: ComputeGate
    deadlines: BodyDeadlines
    budget: MemoryBudget


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def _request_model(endpoint: Callable[..., Any]) -> type[BaseModel]:
    hints = typing.get_type_hints(endpoint)
    parameters = list(inspect.signature(endpoint).parameters)
    if len(parameters) != 1:
        raise TypeError(f"{endpoint.__name__} must take exactly one parameter: its request model")
    model = hints[parameters[0]]
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{endpoint.__name__}'s parameter must be annotated with a pydantic model")
    return model


def _media_type(value: bytes) -> bytes:
    return value.split(b";", 1)[0].strip().lower()


@dataclass(slots=True)  # built once per request: not frozen, whose __init__ is slower
class Reply:
    """A complete HTTP answer: status, body bytes, content type, extra headers; or, for a large
    answer, ``chunks`` of the body, made one at a time (in a worker thread) as they are sent."""

    status: int
    body: bytes
    content_type: bytes = JSON_CONTENT_TYPE
    headers: tuple[tuple[bytes, bytes], ...] = ()
    chunks: Iterator[bytes] | None = None
    chunks_length: int | None = None  # the chunks' total length, when known beforehand

    @classmethod
    def problem(cls, problem: Problem) -> Reply:
        return cls(problem.status, problem.to_bytes(), _PROBLEM_CONTENT_TYPE, tuple(problem.wire_headers()))


class RawBodyRoute(APIRoute):
    """An ``APIRoute`` served by a lean ASGI app: it checks the framing headers, reads the body within
    ``max_body_bytes`` (413 before reading when Content-Length says it is too large), hands the bytes to
    ``respond`` and sends the ``Reply``. A body above ``offload_bytes`` (or of unknown length) is read
    into a share of the process's ``MemoryBudget`` (its length first, then its ``cost``), waits for a
    turn at the ``ComputeGate`` with the whole body in hand, is handled in a worker thread, and keeps
    its share until its answer has left the process. Subclasses say which media types they accept,
    how to respond, and what a body costs.
    """

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, limits: TransportLimits, **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.limits = limits
        self.app = self._serve

    def accepts(self, media_type: bytes | None) -> bool:
        """Whether a body of this media type (``None``: no Content-Type) can be read."""
        return media_type is None or media_type == JSON_CONTENT_TYPE or media_type.endswith(b"+json")

    def unsupported_media_type(self, media_type: bytes) -> Problem:
        shown = media_type.decode("latin-1")[:60]
        return Problem(
            415,
            f"Content-Type {shown} is not supported; send the body as application/json",
            headers={"Accept-Post": "application/json"},
        )

    def respond(self, body: bytearray, scope: Scope) -> Reply:
        raise NotImplementedError

    def reply_to_problem(self, problem: Problem) -> Reply:
        return Reply.problem(problem)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            length = self._check_headers(scope)
        except Problem as problem:
            await self._refuse(scope, send, problem)
            return
        if length is not None and length <= self.limits.offload_bytes:
            try:
                body = await self._read_body(receive, length, scope)
            except Problem as problem:
                await self._refuse(scope, send, problem)
                return
            except _Disconnected:
                request_state(scope)["client_gone"] = True
                return
            await _send(send, self.respond(body, scope))
            return
        share = self.limits.budget.reservation()
        waits_for_client = False
        try:
            try:
                # The body is read into the memory budget, before and without a compute turn: an
                # upload that trickles in holds its own share of memory, and no one's turn.
                await reserve(
                    self.limits.budget, share, length if length is not None else self.limits.offload_bytes
                )
                body = await self._read_body(receive, length, scope, share)
                # Counting 100 MB of commas takes tens of milliseconds: not on the event loop.
                cost = await anyio.to_thread.run_sync(self.cost, body, scope)
                await reserve(self.limits.budget, share, cost)
            except Problem as problem:
                await self._refuse(scope, send, problem)
                return
            except _Disconnected:
                request_state(scope)["client_gone"] = True
                return
            async with self.limits.gate.admit():
                if len(body) > self.limits.offload_bytes:
                    reply = await anyio.to_thread.run_sync(self.respond, body, scope)
                else:
                    reply = self.respond(body, scope)
                del body
            if reply.chunks is None:
                # What is left is the answer's bytes: never more than was counted (they exist
                # already; waiting for room, or refusing, would only lose a finished answer).
                await share.resize(min(share.nbytes, len(reply.body)))
                await _send(send, reply)
            else:
                # A streamed answer is sent after giving the turn back: it goes at the client's pace,
                # and a client that reads slowly holds its share of memory, but no one's turn.
                await self._stream(scope, receive, send, reply)
            waits_for_client = _release_when_sent(scope, share)
        finally:
            if not waits_for_client:
                share.release()

    def cost(self, body: bytearray, scope: Scope) -> int:
        """Bytes of memory that reading, computing and answering this body may hold at once, at most.

        JSON: the body, and ``BYTES_PER_NUMBER`` for each number it may hold (a comma or the end
        follows each), measured with every output asked for (``bench/memory.py``, README).
        """
        return len(body) + BYTES_PER_NUMBER * (body.count(b",") + 1)

    def padding(self, scope: Scope) -> int:
        """Bytes to leave free before the body in its buffer (to align a part of it in memory)."""
        return 0

    async def _stream(self, scope: Scope, receive: Receive, send: Send, reply: Reply) -> None:
        """Send ``reply.chunks`` one at a time, each made in a worker thread just before it goes.

        A client that has not taken a piece for ``XENT_BODY_TIMEOUT`` seconds, or has gone, gets no
        more: the connection is closed (uvicorn closes it when the answer is left unfinished).
        An HTTP/1.0 client, which cannot take chunked transfer encoding, gets the pieces joined.
        """
        assert reply.chunks is not None
        pieces = reply.chunks
        if reply.chunks_length is None and scope.get("http_version") == "1.0":
            joined = await anyio.to_thread.run_sync(b"".join, pieces)
            await _send(send, Reply(reply.status, joined, reply.content_type, reply.headers))
            return
        gone = asyncio.Event()

        async def watch_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass  # the body was read whole: nothing else is expected
            gone.set()

        watcher = asyncio.ensure_future(watch_for_disconnect())
        timeout = self.limits.deadlines.timeout
        try:
            await _send_start(send, reply)
            while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
                if gone.is_set():
                    return
                try:
                    async with asyncio.timeout(timeout):
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                except TimeoutError:
                    logger.warning(
                        "the client took no part of the answer for %g seconds (XENT_BODY_TIMEOUT); "
                        "connection closed",
                        timeout,
                    )
                    return
            await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()

    async def _refuse(self, scope: Scope, send: Send, problem: Problem) -> None:
        request_state(scope)["problem_kinds"] = problem.kinds()
        await _send(send, self.reply_to_problem(problem), close=True)

    def _check_headers(self, scope: Scope) -> int | None:
        """The declared body length (None: not declared), once the framing headers are acceptable."""
        media_type: bytes | None = None
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                media_type = _media_type(value)
            elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
                # Compressed bodies are not read (tritonclient can gzip requests): a clear refusal
                # beats a JSON parse error, and a body that is not what it says is never parsed.
                shown = value.decode("latin-1")[:40]
                raise Problem(415, f"Content-Encoding {shown} is not supported; send the body uncompressed")
            elif name == b"content-length":
                if not (value.isdigit() and value.isascii()):
                    raise Problem(400, "the Content-Length header is not a number")
                length = int(value)
                if length > self.limits.max_body_bytes:
                    raise self._too_large()
        if not self.accepts(media_type):
            assert media_type is not None
            raise self.unsupported_media_type(media_type)
        return length

    def _too_large(self) -> Problem:
        limit = self.limits.max_body_bytes
        return Problem(
            413, f"the request body is larger than the limit of {limit} bytes (XENT_MAX_BODY_BYTES)"
        )

    async def _read_body(
        self, receive: Receive, length: int | None, scope: Scope, share: Reservation | None = None
    ) -> bytearray:
        """The whole body of declared ``length`` (None: not declared), within ``max_body_bytes``, the
        deadlines (``BodyDeadlines``) and, for a large body, its ``share`` of the memory budget."""
        read_body = functools.partial(self._receive_body, length=length, share=share, pad=self.padding(scope))
        return await self.limits.deadlines.read(receive, read_body)

    async def _receive_body(
        self, receive: Receive, length: int | None, share: Reservation | None = None, pad: int = 0
    ) -> bytearray:
        """The body, ``pad`` bytes into its buffer (dropped at the end). A large body of declared
        ``length`` is read into one buffer of that size, made when its ``share`` of the memory budget
        holds it already (appending reallocates: that raised the peak by half a 31 MB body); any other
        grows as it comes, so that a length claimed and never sent costs nothing."""
        body = bytearray(pad + (length if length is not None and share is not None else 0))
        filled = 0
        limit = self.limits.max_body_bytes
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            body[pad + filled : pad + filled + len(chunk)] = chunk  # within ``length``, else appended
            filled += len(chunk)
            if filled > limit:
                raise self._too_large()
            if share is not None and filled > share.nbytes:
                await reserve(self.limits.budget, share, min(limit, max(filled, 2 * share.nbytes)))
            if not message.get("more_body", False):
                del body[pad + filled :], body[:pad]
                return body


class LeanJSONRoute(RawBodyRoute):
    """The JSON endpoints: body -> request model (``model_validate_json``) -> endpoint -> orjson.

    The endpoint is a plain function ``(request_model) -> dict`` whose values may be NumPy arrays; it
    raises ``InvalidInputError`` for content it refuses (422).
    """

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, limits: TransportLimits, **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, limits=limits, **kwargs)
        self._model = _request_model(endpoint)
        self._array_fields = tensor_fields(self._model)
        self._arrays_in_order = [name for name in self._model.model_fields if name in self._array_fields]
        self._compute = endpoint
        self._known_keys = known_keys(self._model)

    def _parse(self, body: bytearray) -> BaseModel:
        return parse_json_request(
            self._model,
            body,
            array_fields=self._array_fields,
            known_keys=self._known_keys,
            limits=self.limits.arrays,
        )

    def respond(self, body: bytearray, scope: Scope) -> Reply:
        state = request_state(scope)
        try:
            request = self._parse(body)
            # The arrays are NumPy copies now: free the body before computing and serialising.
            body.clear()
            payload = self._compute(request)
            state["workload"] = self._workload(request)
            del request
            body_bytes, chunks = json_body(payload, numbers_in(payload))
            return Reply(200, body_bytes, chunks=chunks)
        except ValidationError as error:
            problem = problem_from_validation_error(error)
        except InvalidInputError as error:
            problem = problem_from_invalid_input(error)
        state["problem_kinds"] = problem.kinds()
        return self.reply_to_problem(problem)

    def _workload(self, request: BaseModel) -> tuple[int, int]:
        """(samples, elements) of the request's first array: a batch's rows and its numbers."""
        for name in self._arrays_in_order:
            value = getattr(request, name, None)
            if isinstance(value, np.ndarray):
                return (value.shape[0] if value.ndim >= 2 else 1), int(value.size)
        return 0, 0


def _release_when_sent(scope: Scope, share: Reservation) -> bool:
    """Have the server release ``share`` once the answer has left the process (the protocol in
    ``service.server_protocol`` offers that); False when no server does (in-process tests)."""
    connection = scope.get("extensions", {}).get("xent.connection")
    if connection is None:
        return False
    connection.when_sent(share.release)
    return True


async def _send(send: Send, reply: Reply, *, close: bool = False) -> None:
    """Send a whole (not streamed) reply."""
    await _send_start(send, reply, close=close)
    await send({"type": "http.response.body", "body": reply.body})


async def _send_start(send: Send, reply: Reply, *, close: bool = False) -> None:
    headers = [(b"content-type", reply.content_type), *reply.headers]
    length = len(reply.body) if reply.chunks is None else reply.chunks_length
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    # else HTTP/1.1 sends the pieces with chunked transfer encoding
    if close:
        # The rest of the body was not read; the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})

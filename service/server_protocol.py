"""The server's HTTP protocol: uvicorn's httptools protocol with limits that apply before any route runs.

uvicorn bounds none of these, and each let a few clients, without a key, hold memory or connections:

- the request head (request line and headers): at most ``max_header_bytes`` (431, then the connection
  is closed), counted from the head's first byte *before* it reaches the parser, whose cost grows with
  the head (a 100 MB header took httptools 13 s); and at most ``header_timeout`` seconds from its
  first byte, or from the connection's opening, to its end, however steadily it trickles in (408,
  closed): uvicorn's keep-alive timer is reset by every byte;
- open connections: at most ``max_connections`` per process; more get 503 and are closed at once;
- every answer, streamed or not, HTTP/1.0 or not: once it has waited ``send_grace`` seconds in the
  connection's write buffer, the client must take it at ``min_send_rate`` bytes per second or more
  (each byte taken buys ``1/min_send_rate`` seconds; what the client has taken is the kernel's count
  of bytes it acknowledged, ``TCP_INFO``, asked only of connections whose answer waits). A slower
  connection is *aborted*: the transport's ``close()`` would keep the unsent bytes until they are
  taken, ``abort()`` frees them at once.

One timer per process (``ConnectionGuard``) looks at every connection four times a second; a timer
per request cost 7 % of the small-request throughput (see ``BodyDeadlines``). It also tells the app when
an answer has left the process: ``scope["extensions"]["xent.connection"].when_sent(callback)`` calls
back once the write buffer is empty or the connection is gone, which is when a large request's share
of the memory budget (``service.budget``) is given back.

The protocol is named by uvicorn's ``Config(http=...)``; worker processes make their own guard from
the ``XENT_*`` environment, the single-process server installs the one built from its settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.api.errors import PROBLEM_CONTENT_TYPE, Problem
from service.settings import Settings

__all__ = ["ConnectionGuard", "GuardedHttpToolsProtocol", "install_guard", "process_guard"]

logger = logging.getLogger("service.transport")

#: How often the guard looks at the connections, in seconds.
PERIOD = 0.25


def _problem_response(status: int, detail: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 problem+json answer that closes the connection, written by the protocol."""
    body = Problem(status, detail).to_bytes()
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
        + f"content-type: {PROBLEM_CONTENT_TYPE}\r\n".encode()
        + extra
        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )


class ConnectionGuard:
    """The process's limits and its open connections, looked at by one timer."""

    def __init__(
        self,
        *,
        max_header_bytes: int,
        header_timeout: float,
        max_connections: int,
        min_send_rate: int,
        send_grace: float,
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.min_send_rate = min_send_rate
        self.send_grace = send_grace
        self.connections: set[GuardedHttpToolsProtocol] = set()
        self.now = 0.0  # the loop's clock at the last look: precise enough for deadlines of seconds
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionGuard:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            max_connections=settings.max_connections,
            min_send_rate=settings.min_send_rate,
            send_grace=settings.body_timeout,
        )

    def add(self, connection: GuardedHttpToolsProtocol, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:
            self.now = loop.time()
            self._timer = loop.call_later(PERIOD, self._look, loop)
        self.connections.add(connection)

    def _look(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self.now = now = loop.time()
        try:
            for connection in list(self.connections):
                connection.check(now)
        finally:
            if self.connections:
                self._timer = loop.call_later(PERIOD, self._look, loop)


_GUARD: ConnectionGuard | None = None


def install_guard(guard: ConnectionGuard) -> None:
    """Use ``guard`` for this process's connections (the server does, from its settings)."""
    global _GUARD
    _GUARD = guard


def process_guard() -> ConnectionGuard:
    """This process's guard; a worker process makes it from the ``XENT_*`` environment."""
    global _GUARD
    if _GUARD is None:
        _GUARD = ConnectionGuard.from_settings(Settings())
    return _GUARD


#: Linux's ``struct tcp_info``: ``tcpi_bytes_acked`` (since Linux 4.1) is the u64 at this offset.
_TCP_INFO_BYTES_ACKED = struct.Struct("=Q")
_BYTES_ACKED_OFFSET = 120


def _bytes_taken(transport: asyncio.Transport) -> int | None:
    """Bytes of this connection the client's kernel has acknowledged: what it has taken. Asked of the
    kernel only when an answer waits, so that counting costs small requests nothing; None where the
    kernel does not say (not Linux)."""
    sock = transport.get_extra_info("socket")
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is None or tcp_info is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, _BYTES_ACKED_OFFSET + 8)
    except OSError:
        return None
    if len(info) < _BYTES_ACKED_OFFSET + 8:
        return None
    taken: int = _TCP_INFO_BYTES_ACKED.unpack_from(info, _BYTES_ACKED_OFFSET)[0]
    return taken


def _abort(transport: asyncio.Transport) -> None:
    """Drop the connection now, with what waits to be sent: in the process (``abort``) and in the
    kernel's send buffer too (a reset, by lingering 0 s), which a close would still deliver."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # gone already
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, within the process's ``ConnectionGuard``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = process_guard()
        self._refused = False  # at connection_made: over the connection cap
        self._max_head_bytes = self.guard.max_header_bytes
        self._in_head = True  # what arrives is a request head (not a body)
        self._head_bytes = 0  # of the request head in progress (0: none is)
        self._head_deadline: float | None = None
        self._send_mark: tuple[float, int] | None = None  # (since, bytes taken by then)
        self._waiting_then = 0  # where the kernel does not count: bytes waiting at the last look,
        self._taken_guess = 0  # and the sum of the decreases seen
        self._when_sent: list[Callable[[], object]] = []
        self._extensions = {"xent.connection": self}

    # --- connections --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        if len(guard.connections) >= guard.max_connections:
            self._refused = True
            detail = f"the server has {guard.max_connections} connections open (XENT_MAX_CONNECTIONS)"
            transport.write(_problem_response(503, detail, b"retry-after: 1\r\n"))
            transport.close()
            return
        super().connection_made(transport)
        guard.add(self, self.loop)
        self._head_deadline = guard.now + guard.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused and self.transport is None:
            return  # refused at connection_made: nothing of uvicorn's was set up
        self.guard.connections.discard(self)
        super().connection_lost(exc)
        self._sent()

    # --- the request head ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._head_overflows(data)
                return
        HttpToolsProtocol.data_received(self, data)  # the base class directly: lighter than super()

    def _head_overflows(self, data: bytes) -> None:
        """``data`` takes the head past its limit, unless the head ends within it and the rest is
        body: the parser gets as much as the limit allows, then the rest if the head is over."""
        room = self._max_head_bytes - (self._head_bytes - len(data))
        self._head_bytes = self._max_head_bytes
        super().data_received(data[:room])
        if self.transport.is_closing():
            return  # refused by the parser (400)
        if self._head_bytes:  # not over (on_headers_complete starts the count again)
            self._refuse_head()
        elif len(data) > room:
            self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._head_deadline = None
        self.scope["extensions"] = self._extensions  # type: ignore[typeddict-item]
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._in_head = True  # what comes next is the next request's head
        HttpToolsProtocol.on_message_complete(self)

    def _refuse_head(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.abort()  # an answer is on its way: no room for another
            return
        limit = self.guard.max_header_bytes
        detail = f"the request head is larger than the limit of {limit} bytes (XENT_MAX_HEADER_BYTES)"
        self.transport.write(_problem_response(431, detail))
        self.transport.close()

    # --- deadlines ----------------------------------------------------------------------------

    def check(self, now: float) -> None:
        """Called by the guard's timer: enforce the head's deadline and the answer's minimum rate."""
        transport = self.transport
        deadline = self._head_deadline
        if deadline is None and self._head_bytes:  # a head began since the last look
            self._head_deadline = deadline = now + self.guard.header_timeout
        if deadline is not None and now >= deadline and not transport.is_closing():
            if self.cycle is not None and not self.cycle.response_complete:
                transport.abort()  # a pipelined head late while an answer is going out: no room for a 408
                return
            if self._head_bytes:
                timeout = self.guard.header_timeout
                detail = f"the request head did not arrive within {timeout:g} seconds (XENT_HEADER_TIMEOUT)"
                transport.write(_problem_response(408, detail))
            transport.close()
            return
        waiting = transport.get_write_buffer_size()
        if waiting == 0:
            self._send_mark = None
            if self._when_sent:
                self._sent()
            return
        taken = _bytes_taken(transport)
        if taken is None:  # count what left the buffer between looks, at least
            self._taken_guess += max(0, self._waiting_then - waiting)
            taken = self._taken_guess
        self._waiting_then = waiting
        if self._send_mark is None:
            self._send_mark = (now, taken)
            return
        rate = self.guard.min_send_rate
        since, taken_then = self._send_mark
        if rate and now > since + self.guard.send_grace + (taken - taken_then) / rate:
            logger.warning(
                "the client took %d bytes of the answer in %.1f seconds, less than %d bytes per second "
                "(XENT_MIN_SEND_RATE); connection aborted, %d unsent bytes freed",
                taken - taken_then,
                now - since,
                rate,
                waiting,
            )
            _abort(transport)

    # --- the app's view -----------------------------------------------------------------------

    def when_sent(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once everything written so far has left the process (taken by the
        client's kernel) or the connection is gone: at once if that is now."""
        transport = self.transport
        if self.parser is None or transport.get_write_buffer_size() == 0:  # gone, or all sent
            callback()
        else:
            self._when_sent.append(callback)

    def _sent(self) -> None:
        callbacks, self._when_sent = self._when_sent, []
        for callback in callbacks:
            callback()

"""Large JSON request bodies decoded without a Python object per number.

A general JSON parser turns a 4096 x 1000 batch into four million Python floats (about 32 bytes each,
plus the parser's own transient buffers) before NumPy sees it: five to six times the body in memory.
This module parses such a body in two parts instead:

* the *envelope*, the body with each large numeric array replaced by a placeholder, which is small and
  goes through orjson as usual;
* each large array *span*, read in groups of its top-level elements (rows, for a batch) of about a
  megabyte: orjson parses a group, NumPy copies it into an array and checks that it is rectangular,
  and the group's Python objects are freed before the next one is read.

It is an optimisation with an exact fallback, never a second grammar: the result is returned only when
the envelope and every span parse as strict JSON (orjson) and the placeholders are found exactly once,
as top-level values. Then the body is valid JSON and means exactly the returned values, since a value
slot of a valid document accepts any valid value. Anything unusual (escapes, a string or an object
inside an array, a ragged array, NaN, 1e400, integers beyond 64 bits, duplicate keys) returns ``None``,
and the caller parses the body the ordinary way, which also finds the exact position of the problem.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from typing import Any, Final, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

__all__ = ["BULK_MIN_BODY_BYTES", "MIN_SPAN_BYTES", "BulkValues", "decode_bulk", "decode_bulk_values"]

#: Bodies from this size on are worth trying here first (/v1's and /v2's alike).
BULK_MIN_BODY_BYTES: Final = 256 * 1024
#: Arrays whose JSON text is shorter than this stay in the envelope (orjson is faster on small data).
MIN_SPAN_BYTES: Final = 64 * 1024
#: Bytes of array text parsed per orjson call.
CHUNK_BYTES: Final = 1 << 20

_WHITESPACE: Final = b" \t\r\n"
_PLACEHOLDER: Final = b"-7239480156389021"
_INT64_BOUND: Final = 2.0**63
#: An integer literal too long for 64 bits: 19 or more digits, no fraction, no exponent.
_LONG_INTEGER: Final = re.compile(rb"(?<![\d.])\d{19,}(?![\d.eE])")


def decode_bulk(
    body: bytes | bytearray,
    array_fields: Collection[str],
    *,
    max_dims: int = 8,
    min_span_bytes: int = MIN_SPAN_BYTES,
    chunk_bytes: int = CHUNK_BYTES,
    check_envelope: Callable[[bytes], None] | None = None,
) -> dict[str, Any] | None:
    """The body's top-level object with the large arrays among ``array_fields`` as NumPy arrays
    (float64, or int64 when every element is a JSON integer), or ``None`` to say "parse it the
    ordinary way". ``check_envelope`` is called with the rest of the body (the arrays cut out) before
    it is parsed, and may raise to refuse the body."""
    if b"\\" in body:
        return None  # escapes make quote scanning ambiguous; rare in numeric payloads
    spans = _array_spans(body, array_fields, min_span_bytes)
    if not spans:
        return None
    arrays: dict[str, NDArray[Any]] = {}
    for name, (start, end) in spans.items():
        array = _parse_numeric_array(body, start, end, max_dims, chunk_bytes)
        if array is None:
            return None
        arrays[name] = array
    return _parse_envelope(body, spans, arrays, check_envelope)


#: A numeric payload has a few dozen quotes (its keys and a few string options): a body with more is
#: parsed the ordinary way, which refuses unknown keys without reading them all.
MAX_QUOTES: Final = 256


def _quotes(body: bytes | bytearray) -> list[int] | None:
    """Where the quotes are, or None when there are more than ``MAX_QUOTES``."""
    positions: list[int] = []
    position = body.find(b'"')
    while position != -1:
        if len(positions) == MAX_QUOTES:
            return None
        positions.append(position)
        position = body.find(b'"', position + 1)
    return positions


def _skip_whitespace(body: bytes | bytearray, position: int) -> int:
    while position < len(body) and body[position] in _WHITESPACE:
        position += 1
    return position


def _array_spans(
    body: bytes | bytearray, array_fields: Collection[str], min_span_bytes: int
) -> dict[str, tuple[int, int]]:
    """``{field: (start, end)}`` of large ``[...]`` values of keys named in ``array_fields``.

    Without escapes every string is a pair of consecutive quotes, and numeric arrays contain none: a
    value that starts with ``[`` runs to just before the next quote (the next key) or the object's
    closing brace. A wrong guess here is caught by the checks that follow.
    """
    quotes = _quotes(body)
    if quotes is None or len(quotes) % 2:
        return {}
    closing = body.rfind(b"}")
    spans: dict[str, tuple[int, int]] = {}
    for index in range(0, len(quotes), 2):
        opening, closing_quote = quotes[index], quotes[index + 1]
        name = bytes(body[opening + 1 : closing_quote]).decode("utf-8", "replace")
        if name not in array_fields:
            continue
        colon = _skip_whitespace(body, closing_quote + 1)
        if colon >= len(body) or body[colon] != ord(":"):
            continue
        start = _skip_whitespace(body, colon + 1)
        if start >= len(body) or body[start] != ord("["):
            continue
        limit = quotes[index + 2] if index + 2 < len(quotes) else closing
        end = limit
        while end > start and body[end - 1] in _WHITESPACE:
            end -= 1
        if index + 2 < len(quotes):
            if end <= start or body[end - 1] != ord(","):
                return {}
            end -= 1
            while end > start and body[end - 1] in _WHITESPACE:
                end -= 1
        if name in spans:
            return {}  # a duplicate key: the ordinary path refuses it
        if end - start >= min_span_bytes:
            spans[name] = (start, end)
    return spans


def _parse_numeric_array(
    body: bytes | bytearray, start: int, end: int, max_dims: int, chunk_bytes: int
) -> NDArray[Any] | None:
    """The array ``body[start:end]`` (``[`` ... ``]``), parsed in groups of its top-level elements.

    The elements are cut into groups of about ``chunk_bytes`` at the separators between them
    (``],`` for a 2-D array, ``]],`` for 3-D, ``,`` for 1-D, with any whitespace); each group,
    wrapped in brackets, is a JSON array that orjson parses and NumPy makes rectangular. A cut
    anywhere else leaves a group that is not valid JSON, and the whole array is declined.
    """
    if body[end - 1] != ord("]"):
        return None
    ndim = 0
    position = start
    while position < end and body[position] == ord("["):
        ndim += 1
        position = _skip_whitespace(body, position + 1)
    if ndim > max_dims:
        return None
    separator = _separator(ndim)
    inner_start, inner_end = start + 1, end - 1
    pieces: list[NDArray[Any]] = []
    position = inner_start
    while position < inner_end:
        found = None
        if inner_end - position > chunk_bytes:
            found = separator.search(body, position + chunk_bytes, inner_end)
        # The group keeps its closing brackets; the next one starts after the comma.
        stop, following = (inner_end, inner_end) if found is None else (found.end(1), found.end())
        piece = bytes(body[position:stop])
        array = _parse_group(piece)
        if array is None or array.ndim != ndim or (pieces and array.shape[1:] != pieces[0].shape[1:]):
            return None
        pieces.append(array)
        position = following if found is not None else inner_end
    if not pieces or 0 in pieces[0].shape:
        return None
    return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]


@functools.cache
def _separator(ndim: int) -> re.Pattern[bytes]:
    """Between two top-level elements of an ndim array: ndim - 1 closing brackets, a comma, the
    whitespace JSON allows (``], [`` as json.dumps writes it, or across lines); group 1 ends at the
    last closing bracket. For 1-D arrays, any comma."""
    if ndim <= 1:
        return re.compile(rb"()\s*,\s*")
    return re.compile(rb"(\](?:\s*\]){%d})\s*,\s*" % (ndim - 2))


def _parse_group(piece: bytes) -> NDArray[Any] | None:
    """Comma-separated JSON values -> a rectangular int64 or float64 array, or None."""
    if b"t" in piece or b"f" in piece:
        return None  # true or false: NumPy would turn them into 1 and 0 next to numbers
    try:
        values = orjson.loads(b"[" + piece + b"]")
    except orjson.JSONDecodeError:
        return None
    try:
        array = np.array(values)
    except (ValueError, TypeError):
        return None  # ragged
    if array.dtype.kind not in "if":
        return None  # strings, null, objects, or integers beyond 64 bits
    if array.dtype.kind == "f" and np.any(np.abs(array) >= _INT64_BOUND) and _LONG_INTEGER.search(piece):
        return None  # orjson reads an integer beyond 64 bits as a float; a JSON parser would not
    return array


class BulkValues(NamedTuple):
    """A body with its large arrays cut out: ``envelope`` holds ``placeholders[i]`` where
    ``arrays[i]`` was."""

    envelope: bytes
    placeholders: tuple[int, ...]
    arrays: tuple[NDArray[Any], ...]


def decode_bulk_values(
    body: bytes | bytearray,
    key: str,
    *,
    max_dims: int = 8,
    min_span_bytes: int = MIN_SPAN_BYTES,
    chunk_bytes: int = CHUNK_BYTES,
) -> BulkValues | None:
    """Every large numeric array that is the value of a ``key`` anywhere in the body (/v2's
    ``inputs[i].data``, as many as there are), parsed as ``decode_bulk`` parses /v1's fields, and
    the rest of the body with a distinct integer in place of each; or ``None`` (no large array, or
    anything unusual) to say "parse it the ordinary way".

    The caller parses the envelope as strict JSON, puts each array where its placeholder is and must
    find each placeholder exactly once, as the value of a ``key``; otherwise it parses the body the
    ordinary way. Then, as for ``decode_bulk``, the body was valid JSON meaning exactly that.
    """
    if b"\\" in body:
        return None
    spans = _key_spans(body, key.encode(), min_span_bytes)
    if not spans:
        return None
    arrays: list[NDArray[Any]] = []
    for start, end in spans:
        array = _parse_numeric_array(body, start, end, max_dims, chunk_bytes)
        if array is None:
            return None
        arrays.append(array)
    placeholders = tuple(int(_PLACEHOLDER) - index for index in range(len(spans)))
    parts: list[bytes] = []
    position = 0
    for (start, end), placeholder in zip(spans, placeholders, strict=True):
        parts += [bytes(body[position:start]), b"%d" % placeholder]
        position = end
    parts.append(bytes(body[position:]))
    envelope = b"".join(parts)
    if any(envelope.count(b"%d" % placeholder) != 1 for placeholder in placeholders):
        return None
    return BulkValues(envelope, placeholders, tuple(arrays))


def _key_spans(body: bytes | bytearray, key: bytes, min_span_bytes: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each large ``[...]`` value of ``key``, in order.

    Without escapes every string is a pair of consecutive quotes and numeric arrays contain none. An
    n-dimensional array of numbers ends at its first run of n closing brackets (inner arrays close
    at most n - 1 at once); a wrong guess leaves text that does not parse, caught by what follows.
    """
    quotes = _quotes(body)
    if quotes is None or len(quotes) % 2:
        return []
    spans: list[tuple[int, int]] = []
    for index in range(0, len(quotes), 2):
        opening, closing_quote = quotes[index], quotes[index + 1]
        if body[opening + 1 : closing_quote] != key:
            continue
        colon = _skip_whitespace(body, closing_quote + 1)
        start = _skip_whitespace(body, colon + 1)
        if colon >= len(body) or body[colon] != ord(":") or start >= len(body) or body[start] != ord("["):
            continue
        limit = quotes[index + 2] if index + 2 < len(quotes) else len(body)
        ndim, position = 0, start
        while position < limit and body[position] == ord("["):
            ndim += 1
            position = _skip_whitespace(body, position + 1)
        end = _array_end(body, position, limit, ndim)
        if end is None:
            return []
        if end - start >= min_span_bytes:
            spans.append((start, end))
    return spans


def _array_end(body: bytes | bytearray, position: int, limit: int, ndim: int) -> int | None:
    """Just after the first run of ``ndim`` closing brackets (whitespace allowed between them) in
    ``body[position:limit]``: ``bytes.find`` from one closing bracket to the next (a regular
    expression would look at every byte of a large array in Python's matcher)."""
    found = body.find(b"]", position, limit)
    while found != -1:
        end, run = found + 1, 1
        while run < ndim:
            after = _skip_whitespace(body, end)
            if after >= limit or body[after] != ord("]"):
                break
            end, run = after + 1, run + 1
        if run == ndim:
            return end
        found = body.find(b"]", end, limit)
    return None


def _parse_envelope(
    body: bytes | bytearray,
    spans: dict[str, tuple[int, int]],
    arrays: dict[str, NDArray[Any]],
    check_envelope: Callable[[bytes], None] | None,
) -> dict[str, Any] | None:
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    parts: list[bytes] = []
    position = 0
    for _, (start, end) in ordered:
        parts += [bytes(body[position:start]), _PLACEHOLDER]
        position = end
    parts.append(bytes(body[position:]))
    envelope = b"".join(parts)
    if envelope.count(_PLACEHOLDER) != len(spans):
        return None
    if check_envelope is not None:
        check_envelope(envelope)
    try:
        document = orjson.loads(envelope)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    placeholder = int(_PLACEHOLDER)
    for name in spans:
        value = document.get(name)
        if type(value) is not int or value != placeholder:
            return None  # the array was not a top-level value after all
        document[name] = arrays[name]
    return document

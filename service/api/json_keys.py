"""The keys of a JSON body, checked before it is parsed: no key twice in one object, no unknown field.

Duplicate keys: RFC 8259 leaves them undefined; orjson and pydantic-core keep the last value, so
``{"target": [1], "target": [2]}`` would be answered for ``[2]`` while a proxy or a log reader that
keeps the first sees ``[1]``. The service refuses such a body instead.

Unknown fields: pydantic reports each one as an error of its own, and a parser holds the interpreter
for the whole body: 2 million unknown keys (25 MB) took 38 s and 2.7 GB to refuse, and stalled every
other request. Here the scan stops at the first few unknown top-level keys, so that refusing a body
costs less than reading a valid one of the same size.

The scan looks only at quotes and braces: a regular expression finds them at C speed, and the numbers
in between, which are most of a large body, are skipped without a Python step each.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

import orjson

from service.core import InvalidInputError, Issue

__all__ = [
    "SMALL_BODY_BYTES",
    "UNDECIDED",
    "check_keys",
    "keys_in_text",
    "orjson_may_differ",
    "small_document",
    "unknown_fields_issue",
]

_QUOTE_OR_BRACE: Final = re.compile(rb'["{}]')
_COLON_AFTER: Final = re.compile(rb"[ \t\r\n]*:")
_QUOTE, _OPEN = ord('"'), ord("{")
#: Unknown fields named in the one issue that refuses them.
LISTED_UNKNOWN: Final = 5
_SHOWN: Final = 40


def _shown(key: str) -> str:
    return key if len(key) <= _SHOWN else key[: _SHOWN - 3] + "..."


def unknown_fields_issue(unknown: list[str], *, more: bool = False) -> Issue:
    """The one issue that refuses unknown fields: the first few named (``more``: there are others)."""
    if len(unknown) == 1 and not more:
        msg = f"{_shown(unknown[0])}: unknown field; see the API reference for the accepted fields"
    else:
        listed = ", ".join(repr(_shown(key)) for key in unknown[:LISTED_UNKNOWN])
        rest = " and more" if more or len(unknown) > LISTED_UNKNOWN else ""
        msg = f"unknown fields {listed}{rest}; see the API reference for the accepted fields"
    return Issue((_shown(unknown[0]),), msg, "extra_forbidden")


def _string_end(body: bytes | bytearray, start: int) -> int:
    """The index of the quote that closes the string opened at ``start`` (-1: unterminated)."""
    end = body.find(b'"', start + 1)
    while end != -1:
        backslashes = 0
        while body[end - 1 - backslashes] == 0x5C:  # '\\'
            backslashes += 1
        if backslashes % 2 == 0:
            return end
        end = body.find(b'"', end + 1)
    return -1


def _decoded(key: bytes) -> str | None:
    """The string a quoted key decodes to (None: not a valid JSON string)."""
    if b"\\" not in key:  # no escape: the bytes between the quotes, if they are UTF-8 (most keys)
        try:
            return key[1:-1].decode()
        except UnicodeDecodeError:
            return None
    try:
        value: str = orjson.loads(key)
    except orjson.JSONDecodeError:
        return None
    return value


#: Bodies up to this size are first checked the quick way (``small_document``).
SMALL_BODY_BYTES: Final = 4096
#: A text's digits all read as 0 (``bytes.translate``): a run of 19 of them is found in one C-speed search.
_DIGITS_AS_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS: Final = b"0" * 19
#: Fewer brackets than this in a text: it nests less deep than pydantic-core's parser allows (199).
MAX_BRACKETS: Final = 200
#: What ``small_document`` answers when the quick way cannot say.
UNDECIDED: Final = object()


def keys_in_text(body: bytes | bytearray) -> int:
    """How many keys a JSON text has, at most: its colons. Each key is followed by one, and a colon
    outside a string follows a key; a string may hold more. So a parsed document with this many keys
    has every key of the text, and none twice in one object."""
    return body.count(b":")


def orjson_may_differ(body: bytes | bytearray) -> bool:
    """Whether orjson may read a JSON text otherwise than pydantic-core's parser: when it has a run of
    19 digits or more (orjson reads an integer beyond 64 bits as a float; a long fraction is counted
    too, to keep this one search), or ``MAX_BRACKETS`` or more brackets (orjson nests 1023 deep;
    pydantic-core refuses from 200 deep, as invalid JSON)."""
    return body.count(b"[") + body.count(b"{") >= MAX_BRACKETS or _LONG_DIGITS in body.translate(
        _DIGITS_AS_ZERO
    )


def small_document(body: bytes | bytearray, known: Collection[str] | None = None) -> object:
    """A small body, parsed, when its keys are plainly fine; ``UNDECIDED`` otherwise.

    Plainly fine: its objects have as many keys, parsed, as its text has colons, and the top one
    only ``known`` keys. Then no object repeats a key (each key of the text is one of the parsed
    objects'), and ``check_keys`` has nothing to find. When the text has one ``{``, the top object's
    keys are all there are; otherwise they are counted object by object. Anything else (not JSON for
    orjson, a repeated key, a string holding a colon, what orjson may read otherwise) is
    ``UNDECIDED``: ``check_keys`` scans the text, and the model's own JSON parser reads it.

    Parsing a small body takes a few microseconds, a fraction of the scan's Python steps; the routes
    validate the document this returns, which spares them a second parse.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return UNDECIDED
    if isinstance(document, dict) and known is not None and any(key not in known for key in document):
        return UNDECIDED
    # One "{" in the text: the top object is the only one.
    keys = len(document) if isinstance(document, dict) and body.count(b"{") == 1 else _keys_in(document)
    if keys != keys_in_text(body) or orjson_may_differ(body):
        return UNDECIDED
    return document


def _keys_in(document: object) -> int:
    """The number of keys of every object in a parsed document."""
    keys = 0
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            keys += len(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(item for item in value if isinstance(item, dict | list))
    return keys


def check_keys(
    body: bytes | bytearray, known: Collection[str] | None = None, *, max_depth: int = 8, quick: bool = True
) -> None:
    """Raise ``InvalidInputError`` if an object of ``body`` (a JSON text) repeats a key
    (``duplicate_key``), or, given the ``known`` top-level fields, if the top-level object has others
    (``extra_forbidden``, naming the first few).

    Objects nested deeper than ``max_depth`` (the deepest the request's model has) are not looked
    into: the body is invalid anyway, and the model's validation says where. So ``[{}, {}, ...]`` in
    place of numbers costs one step, not one per object.

    Keys are compared as the strings they decode to (``"a"`` and ``"\\u0061"`` are the same key). A
    body that is not valid JSON may pass: the parser reports it afterwards. A small body is first
    tried the quick way (``small_document``) unless ``quick`` is False (the caller tried it).
    """
    if quick and len(body) <= SMALL_BODY_BYTES and small_document(body, known) is not UNDECIDED:
        return
    objects: list[set[str]] = []
    unknown: list[str] = []
    position = 0
    while (found := _QUOTE_OR_BRACE.search(body, position)) is not None:
        start = found.start()
        char = body[start]
        if char != _QUOTE:
            if char == _OPEN:
                if len(objects) == max_depth:
                    break
                objects.append(set())
            elif objects:
                objects.pop()
            position = start + 1
            continue
        end = _string_end(body, start)
        if end == -1:
            break
        position = end + 1
        colon = _COLON_AFTER.match(body, position)
        if colon is None or not objects:
            continue  # a value, not a key
        position = colon.end()
        key = _decoded(bytes(body[start : end + 1]))
        if key is None:
            break
        keys = objects[-1]
        if key in keys:
            msg = f"{_shown(key)}: the key appears more than once in one object; send each field once"
            raise InvalidInputError.single((_shown(key),), msg, "duplicate_key")
        keys.add(key)
        if known is not None and len(objects) == 1 and key not in known:
            unknown.append(key)
            if len(unknown) == LISTED_UNKNOWN + 1:
                break  # enough to say what is wrong; the rest is not read
    if unknown:
        raise InvalidInputError([unknown_fields_issue(unknown)])

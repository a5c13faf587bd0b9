"""A small all-JSON request header read without pydantic, when it is plainly valid.

``InferenceRequest.model_validate_json`` with the key check before it (``json_keys.check_keys``) costs
about 19 microseconds on the article's example, a sixth of a small request's time in the service.
``plain_header`` reads such a body with one ``orjson.loads`` and a few type checks, and answers only
when the body is certainly what the request model accepts, with the same values; anything else (an
unknown key, a wrong type, a string with an escape...) returns None and the model reads the body, with
its error messages. So there is no second set of rules to keep in step, only a stricter filter:

* no backslash in the body: every string is its bytes between quotes, as pydantic reads it;
* nothing orjson may read otherwise than pydantic (``json_keys.orjson_may_differ``): no run of 19
  digits (orjson reads an integer beyond 64 bits as a float, pydantic as an integer; with at most 18
  digits both read the same integer, and both round a float the same way), and fewer than 200
  brackets (pydantic-core refuses JSON nested 200 deep, orjson reads it);
* as many keys in the parsed objects as colons in the text (``json_keys.keys_in_text``, as
  ``json_keys.small_document`` counts them): then no object repeats a key (nor has a key the walk did
  not count). A string holding a colon makes the count larger, and the model reads that body.

``Header``, ``HeaderInput`` and ``HeaderOutput`` are what the codec reads of a header, which the
request model and the plain classes here both are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from service.api.json_keys import SMALL_BODY_BYTES, keys_in_text, orjson_may_differ
from service.api.schemas import known_keys
from service.api.v2.protocol import (
    MAX_PARAMETERS,
    MAX_SHAPE_DIMS,
    MAX_TENSORS,
    InferenceRequest,
    ParameterValue,
    RequestInput,
    RequestOutput,
)

__all__ = ["Header", "HeaderInput", "HeaderOutput", "plain_header"]


class HeaderInput(Protocol):
    """An input tensor as the header declares it (``RequestInput``'s fields)."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def datatype(self) -> str: ...
    @property
    def parameters(self) -> dict[str, ParameterValue] | None: ...
    @property
    def data(self) -> Any: ...


class HeaderOutput(Protocol):
    """A requested output (``RequestOutput``'s fields)."""

    @property
    def name(self) -> str: ...
    @property
    def parameters(self) -> dict[str, ParameterValue] | None: ...


class Header(Protocol):
    """A request's JSON header (``InferenceRequest``'s fields)."""

    @property
    def id(self) -> str | None: ...
    @property
    def model_name(self) -> str | None: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def parameters(self) -> dict[str, ParameterValue] | None: ...
    @property
    def inputs(self) -> Sequence[HeaderInput]: ...
    @property
    def outputs(self) -> Sequence[HeaderOutput] | None: ...


# Not frozen: a frozen dataclass or a NamedTuple costs two to three times as much to make, and these
# live only while the codec reads them.
@dataclass(slots=True)
class PlainInput:
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, ParameterValue] | None
    data: Any


@dataclass(slots=True)
class PlainOutput:
    name: str
    parameters: dict[str, ParameterValue] | None


@dataclass(slots=True)
class PlainHeader:
    id: str | None
    model_name: str | None
    model_version: str | None
    parameters: dict[str, ParameterValue] | None
    inputs: list[HeaderInput]
    outputs: list[HeaderOutput] | None


_TOP_KEYS: Final = known_keys(InferenceRequest)
_INPUT_KEYS: Final = known_keys(RequestInput)
_OUTPUT_KEYS: Final = known_keys(RequestOutput)
_INT64_MIN, _INT64_END = -(2**63), 2**63


class _NotPlain(Exception):
    """The body is not plainly valid: the request model reads it."""


#: A required field's value when it is absent (no type check accepts it).
_MISSING: Final = object()


def plain_header(body: bytes | bytearray) -> Header | None:
    """The header of a small all-JSON body that the request model certainly accepts, as it reads
    it; None for anything else (then the model decides, with its messages)."""
    if len(body) > SMALL_BODY_BYTES or b"\\" in body or orjson_may_differ(body):
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    try:
        header, keys = _header(document)
    except _NotPlain:
        return None
    return header if keys == keys_in_text(body) else None


def _header(document: Any) -> tuple[PlainHeader, int]:
    """The header, and how many keys its objects have (``_NotPlain`` for anything unusual)."""
    fields = _object(document, _TOP_KEYS)
    parameters = _parameters(fields.get("parameters"))
    keys = len(fields) + (len(parameters) if parameters else 0)
    inputs: list[HeaderInput] = []
    for item in _list(fields.get("inputs", _MISSING)):
        tensor = _input(item)
        inputs.append(tensor)
        keys += len(item) + (len(tensor.parameters) if tensor.parameters else 0)
    outputs: list[HeaderOutput] | None = None
    if (listed := fields.get("outputs")) is not None:
        outputs = []
        for item in _list(listed):
            output = PlainOutput(
                _text(_object(item, _OUTPUT_KEYS).get("name", _MISSING)), _parameters(item.get("parameters"))
            )
            outputs.append(output)
            keys += len(item) + (len(output.parameters) if output.parameters else 0)
    plain = PlainHeader(
        id=_optional_text(fields.get("id")),
        model_name=_optional_text(fields.get("model_name")),
        model_version=_optional_text(fields.get("model_version")),
        parameters=parameters,
        inputs=inputs,
        outputs=outputs,
    )
    return plain, keys


def _input(value: Any) -> PlainInput:
    fields = _object(value, _INPUT_KEYS)
    shape = fields.get("shape", _MISSING)
    if type(shape) is not list or len(shape) > MAX_SHAPE_DIMS:
        raise _NotPlain
    for dimension in shape:
        if type(dimension) is not int or not 0 <= dimension < _INT64_END:
            raise _NotPlain
    name, datatype = _text(fields.get("name", _MISSING)), _text(fields.get("datatype", _MISSING))
    return PlainInput(name, shape, datatype, _parameters(fields.get("parameters")), fields.get("data"))


def _object(value: Any, known: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict or not value.keys() <= known:
        raise _NotPlain
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list or len(value) > MAX_TENSORS:
        raise _NotPlain
    return value


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _NotPlain
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _parameters(value: Any) -> dict[str, ParameterValue] | None:
    """Parameters: booleans, strings, 64-bit integers and finite floats, at most ``MAX_PARAMETERS``.
    (A float of 2**63 or more may have been an integer beyond 64 bits.)"""
    if value is None:
        return None
    if type(value) is not dict or len(value) > MAX_PARAMETERS:
        raise _NotPlain
    for item in value.values():
        kind = type(item)
        if kind is int:
            if not _INT64_MIN <= item < _INT64_END:
                raise _NotPlain
        elif kind is float:
            if not -(2.0**63) < item < 2.0**63:
                raise _NotPlain
        elif kind is not bool and kind is not str:
            raise _NotPlain
    return value

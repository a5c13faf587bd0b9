"""Large /v2 JSON bodies read as /v1's: each large ``data`` array a megabyte at a time, and exactly the
answer of the ordinary path (the same arrays, or the same refusal) whatever the body holds."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from service.api.arrays import ArrayLimits
from service.api.bulk_json import BULK_MIN_BODY_BYTES
from service.api.v2 import codec
from service.api.v2.codec import DecodedRequest, decode_request
from service.api.v2.json_data import parse_bulk
from service.core import InvalidInputError

LIMITS = ArrayLimits(max_elements=1_000_000, max_dims=8)
ROWS, CLASSES = 400, 100  # 40 000 numbers: about 800 kB of JSON

rng = np.random.default_rng(18)
LOGITS = rng.normal(size=(ROWS, CLASSES))
TARGET = rng.integers(0, CLASSES, ROWS)


def _body(logits: Any = None, target: Any = None, *, nested: bool = False, **extra: Any) -> bytes:
    logits = LOGITS if logits is None else logits
    target = TARGET if target is None else target
    data = logits.tolist() if nested else logits.ravel().tolist()
    document = {
        "inputs": [
            {"name": "logits", "datatype": "FP64", "shape": list(logits.shape), "data": data},
            {"name": "target", "datatype": "INT64", "shape": [len(target)], "data": target.tolist()},
        ],
        **extra,
    }
    return json.dumps(document).encode()


def _both_ways(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(the bulk path's outcome, the ordinary path's): a DecodedRequest or the refusal's issues."""

    def outcome() -> DecodedRequest | list[tuple[Any, str, str]]:
        try:
            return decode_request(bytearray(body), None, LIMITS)
        except InvalidInputError as error:
            return [(issue.loc, issue.msg, issue.kind) for issue in error.issues]

    bulk = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(codec, "BULK_MIN_BODY_BYTES", 1 << 62)
        ordinary = outcome()
    return bulk, ordinary


def _same(bulk: Any, ordinary: Any) -> None:
    if isinstance(ordinary, list):
        assert bulk == ordinary
        return
    assert isinstance(bulk, DecodedRequest)
    assert [(t.name, t.datatype) for t in bulk.inputs] == [(t.name, t.datatype) for t in ordinary.inputs]
    for ours, theirs in zip(bulk.inputs, ordinary.inputs, strict=True):
        assert ours.array.dtype == theirs.array.dtype
        np.testing.assert_array_equal(ours.array, theirs.array)
    assert (bulk.id, bulk.parameters, bulk.outputs, bulk.binary_output) == (
        ordinary.id,
        ordinary.parameters,
        ordinary.outputs,
        ordinary.binary_output,
    )


@pytest.mark.parametrize("nested", [False, True])
def test_a_large_request_takes_the_bulk_path_and_means_the_same(
    nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _body(nested=nested, outputs=[{"name": "loss"}], id="big-1")
    assert len(body) >= BULK_MIN_BODY_BYTES
    bulk = parse_bulk(body, LIMITS)
    assert bulk is not None
    _, arrays, envelope = bulk
    assert sorted(arrays) == [0]  # the logits; the target's text is small and stays in the envelope
    assert len(envelope) < 10_000
    np.testing.assert_array_equal(arrays[0].reshape(ROWS, CLASSES), LOGITS)
    decoded, ordinary = _both_ways(body, monkeypatch)
    _same(decoded, ordinary)
    assert isinstance(decoded, DecodedRequest)
    np.testing.assert_array_equal(decoded.inputs[0].array, LOGITS)
    np.testing.assert_array_equal(decoded.inputs[1].array, TARGET)


def _with(text: bytes, old: bytes, new: bytes) -> bytes:
    assert old in text
    return text.replace(old, new, 1)


VALID = _body()
FIRST = json.dumps(LOGITS.ravel()[0]).encode()
ODD_BODIES = {
    "NaN inside": _with(VALID, FIRST, b"NaN"),
    "a boolean inside": _with(VALID, FIRST, b"true"),
    "a string inside": _with(VALID, FIRST, b'"1.5"'),
    "null inside": _with(VALID, FIRST, b"null"),
    "a huge number": _with(VALID, FIRST, b"1e400"),
    "an unknown key": _with(VALID, b'"inputs"', b'"extra": 1, "inputs"'),
    "the data twice": _with(VALID, b'"shape": [400, 100]', b'"data": [1], "shape": [400, 100]'),
    "a wrong shape": _with(VALID, b'"shape": [400, 100]', b'"shape": [400, 99]'),
    "nested against the shape": _body(nested=True).replace(b'"shape": [400, 100]', b'"shape": [40000]'),
    "ragged rows": _body(nested=True).replace(b"], [", b", 0.5], [", 1),
    "integers for FP32": _body(logits=rng.integers(-(10**6), 10**6, (ROWS, CLASSES))).replace(
        b"FP64", b"FP32"
    ),
    "floats for INT64": _body(target=rng.normal(size=50_000)),
    "FP32 out of range": _with(VALID, FIRST, b"1e300").replace(b"FP64", b"FP32"),
    "a placeholder's own number": _with(VALID, FIRST, b"-7239480156389021"),
    "data in parameters": _with(
        VALID,
        b'"inputs"',
        b'"parameters": {"data": ' + json.dumps(list(range(30_000))).encode() + b'}, "inputs"',
    ),
    "not an object": b"[" + VALID + b"]",
    "trailing text": VALID + b" 1",
}


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
def test_odd_large_bodies_get_the_ordinary_paths_answer(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = ODD_BODIES[name]
    assert len(body) >= BULK_MIN_BODY_BYTES
    bulk, ordinary = _both_ways(body, monkeypatch)
    _same(bulk, ordinary)

"""decode_bulk either agrees exactly with a strict JSON parser or declines (returns None)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.api.bulk_json import decode_bulk

FIELDS = frozenset({"logits", "target", "labels", "weight"})
# Every array is a span; chunks are cut everywhere.
SMALL: dict[str, Any] = {"min_span_bytes": 1, "chunk_bytes": 7}


def _reference(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(body)
    for name in FIELDS & document.keys():
        if isinstance(document[name], list):
            document[name] = np.array(document[name])
    return document


def _assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for name, value in want.items():
        if isinstance(value, np.ndarray):
            assert isinstance(got[name], np.ndarray), name
            assert got[name].shape == value.shape
            assert got[name].dtype == value.dtype
            np.testing.assert_array_equal(got[name], value)
        else:
            assert got[name] == value


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
floats = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    shape = draw(shapes)
    logits = draw(hnp.arrays(np.float64, shape, elements=floats))
    target = draw(hnp.arrays(np.int64, shape[:-1] or (1,), elements=st.integers(-(2**62), 2**62)))
    document: dict[str, Any] = {"logits": logits.tolist(), "target": target.tolist()}
    if draw(st.booleans()):
        document["reduction"] = draw(st.sampled_from(["mean", "sum"]))
    if draw(st.booleans()):
        document["outputs"] = ["losses", "grad"]
    if draw(st.booleans()):
        document["weight"] = [1, 2.5, 3]
    keys = draw(st.permutations(list(document)))
    ordered = {key: document[key] for key in keys}
    style = draw(st.sampled_from(["compact", "spaced", "indented"]))
    if style == "compact":
        return orjson.dumps(ordered)
    if style == "spaced":
        return json.dumps(ordered).encode()
    return json.dumps(ordered, indent=draw(st.integers(0, 3))).encode()


@settings(max_examples=300)
@given(documents())
def test_agrees_with_a_strict_parser(body: bytes) -> None:
    got = decode_bulk(body, FIELDS, **SMALL)
    assert got is not None
    _assert_same(got, _reference(body))


@given(documents(), st.integers(1, 64))
def test_chunk_size_does_not_matter(body: bytes, chunk_bytes: int) -> None:
    got = decode_bulk(body, FIELDS, min_span_bytes=1, chunk_bytes=chunk_bytes)
    assert got is not None
    _assert_same(got, _reference(body))


def test_mixed_integers_and_floats_give_float64() -> None:
    got = decode_bulk(b'{"logits": [[1, 2.5], [3, 4]], "target": [0, 1]}', FIELDS, **SMALL)
    assert got is not None
    assert got["logits"].dtype == np.float64
    assert got["target"].dtype == np.int64


def test_small_arrays_stay_in_the_envelope() -> None:
    got = decode_bulk(b'{"logits": [[1, 2]], "target": [0]}', FIELDS)
    assert got is None  # nothing large enough to be worth it: the ordinary path is faster


def test_a_large_array_is_decoded_with_default_settings() -> None:
    logits = np.random.default_rng(0).normal(size=(300, 100))
    body = orjson.dumps({"logits": logits, "target": list(range(300))}, option=orjson.OPT_SERIALIZE_NUMPY)
    got = decode_bulk(bytearray(body), FIELDS)
    assert got is not None
    np.testing.assert_array_equal(got["logits"], logits)
    assert got["target"] == list(range(300))  # small: left to the envelope's parser


@pytest.mark.parametrize("indent", [None, 0, 2])
def test_whitespace_between_rows_still_cuts_the_array_into_groups(
    indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.api import bulk_json

    groups: list[bytes] = []
    parse_group = bulk_json._parse_group

    def counting(piece: bytes) -> Any:
        groups.append(piece)
        return parse_group(piece)

    monkeypatch.setattr(bulk_json, "_parse_group", counting)
    logits = np.random.default_rng(1).normal(size=(50, 3, 2)).tolist()
    body = json.dumps({"logits": logits, "target": [[0, 1, 0]] * 50}, indent=indent).encode()
    got = decode_bulk(body, FIELDS, min_span_bytes=1, chunk_bytes=200)
    assert got is not None
    _assert_same(got, _reference(body))
    logits_groups = [piece for piece in groups if b"." in piece]
    assert len(logits_groups) > 10  # cut at "], [" and across lines, not parsed as one piece


DECLINED = [
    b'{"logits": [[1, 2], [3]], "target": [0, 1]}',  # ragged
    b'{"logits": [[1, 2], 3], "target": [0, 1]}',  # mixed depth
    b'{"logits": [[1, 2], [3, [4]]], "target": [0, 1]}',  # deeper element
    b'{"logits": [], "target": []}',  # empty
    b'{"logits": [[]], "target": [0]}',  # empty row
    b'{"logits": [1, NaN], "target": 0}',
    b'{"logits": [1, Infinity], "target": 0}',
    b'{"logits": [1, 1e400], "target": 0}',
    b'{"logits": [1, true], "target": 0}',
    b'{"logits": [1, null], "target": 0}',
    b'{"logits": [1, "2"], "target": 0}',
    b'{"logits": [1, {}], "target": 0}',
    b'{"logits": [1, 2,], "target": 0}',  # trailing comma
    b'{"logits": [1,, 2], "target": 0}',
    b'{"logits": [01, 2], "target": 0}',  # leading zero
    b'{"logits": [1., 2], "target": 0}',
    b'{"logits": [+1, 2], "target": 0}',
    b'{"logits": [1, 2], "target": [100000000000000000000000000000]}',  # beyond 64 bits
    b'{"logits": [1, 2], "target": [9223372036854775808]}',  # just beyond int64
    b'{"logits": [1, -100000000000000000000], "target": 0}',  # orjson would read a float
    b'{"logits": [1, 2], "logits": [3, 4], "target": 0}',  # duplicate key
    b'{"outputs": {"logits": [1, 2]}, "target": 0}',  # not top-level
    b'{"reduction": "x\\"", "logits": [1, 2], "target": 0}',  # escapes
    b'{"logits": [1, 2] "target": 0}',  # missing comma
    b'{"logits": [1, 2], "target": 0',  # truncated
    b'{"logits": [1, 2], "target": 0}}',  # trailing garbage
    b'[{"logits": [1, 2]}]',  # not an object
    b'{"logits": [1, 2], "target": 0, "x": -7239480156389021}',  # the placeholder itself
]


@pytest.mark.parametrize("body", DECLINED, ids=[body.decode()[:40] for body in DECLINED])
def test_declines_what_it_cannot_decode_exactly(body: bytes) -> None:
    assert decode_bulk(body, FIELDS, **SMALL) is None

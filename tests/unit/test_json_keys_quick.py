"""Small bodies are checked the quick way first (parse, count keys); the answer is the full scan's."""

from __future__ import annotations

import orjson
import pytest

from service.api import json_keys
from service.api.json_keys import check_keys
from service.core import InvalidInputError

KNOWN = {"inputs", "outputs", "id", "parameters"}
BODIES = [
    b'{"inputs": [{"name": "a", "data": [1, 2]}], "id": "x"}',
    b'{"inputs": [{"name": "a", "name": "b"}]}',
    b'{"inputs": [], "inputs": []}',
    b'{"id": "say \\":\\" twice", "inputs": []}',
    b'{"id": "say \\":\\" twice", "inputs": [], "id": "y"}',
    b'{"inputs": [{"parameters": {"k": 1, "k": 2}}]}',
    b'{"inputs": [[{"deep": {"x": 1, "x": 2}}]]}',
    b'{"unknown": 1, "inputs": []}',
    b'{"inputs": [{"\\u006e": 1, "n": 2}]}',
    b'{"inputs": [',
    b"[1, 2]",
]


def _outcome(body: bytes, known: set[str] | None) -> list[tuple[object, str, str]]:
    try:
        check_keys(body, known, max_depth=8)
    except InvalidInputError as error:
        return [(issue.loc, issue.msg, issue.kind) for issue in error.issues]
    return []


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("known", [KNOWN, None])
def test_the_quick_check_answers_as_the_full_scan(
    body: bytes, known: set[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = _outcome(body, known)
    monkeypatch.setattr(json_keys, "SMALL_BODY_BYTES", -1)
    assert quick == _outcome(body, known)


def test_repeated_keys_are_still_refused_in_small_bodies() -> None:
    assert _outcome(BODIES[1], KNOWN)[0][2] == "duplicate_key"
    assert _outcome(BODIES[8], KNOWN)[0][2] == "duplicate_key"
    assert _outcome(BODIES[0], KNOWN) == []


def test_a_small_document_is_given_only_when_orjson_reads_it_as_pydantic_would() -> None:
    flat = b'{"inputs": [1, 2], "id": "x"}'
    assert json_keys.small_document(flat, KNOWN) == {"inputs": [1, 2], "id": "x"}
    assert json_keys.small_document(BODIES[0], KNOWN) == orjson.loads(BODIES[0])
    undecided = [
        b'{"id": 18446744073709551616, "inputs": []}',  # orjson: a float; pydantic-core: the integer
        b'{"id": -9223372036854775809, "inputs": []}',  # orjson: -2**63 exactly, which fits int64
        BODIES[1],  # a repeated key
        BODIES[3],  # a string holding '":'
        BODIES[7],  # an unknown field
        b'{"inputs": [NaN]}',  # not JSON for orjson
        b'{"inputs": ' + b"[" * 250 + b"]" * 250 + b"}",  # orjson reads it, pydantic-core refuses it
    ]
    for body in undecided:
        assert json_keys.small_document(body, KNOWN) is json_keys.UNDECIDED, body
    # A long fraction is left to pydantic-core too (one search finds every run of 19 digits), and so is
    # a string holding a colon (the colons are the keys' count).
    assert json_keys.small_document(b'{"id": 0.0391125732706874561234}', KNOWN) is json_keys.UNDECIDED
    assert json_keys.small_document(b'{"id": "a: b"}', KNOWN) is json_keys.UNDECIDED
    assert json_keys.small_document(b'{"id": 0.03911257327068745}', KNOWN) == {"id": 0.03911257327068745}

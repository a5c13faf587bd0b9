"""Response bodies written in pieces are the bytes orjson writes in one go."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.api.payloads import FIRST_UNSAFE_ORJSON, check_serialiser, json_chunks, numbers_in

ROOT = Path(__file__).resolve().parents[2]


def _body() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "loss": np.float64(0.5),
        "count": 3,
        "nothing": None,
        "losses": rng.normal(size=1000),
        "softmax": rng.normal(size=(50, 7, 3)),
        "float32": rng.normal(size=(40, 5)).astype(np.float32),
        "target_probability": np.where(rng.random(100) < 0.3, np.nan, rng.random(100)),
        "predictions": rng.integers(0, 5, 300),
        "transposed": np.ascontiguousarray(rng.normal(size=(3, 60)).T),
        "one": rng.normal(size=(1, 1)),
    }


@pytest.mark.parametrize("chunk_numbers", [1, 5, 16, 100, 999, 1_000_000])
def test_pieces_join_to_orjson_bytes(chunk_numbers: int) -> None:
    body = _body()
    whole = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    pieces = list(json_chunks(body, chunk_numbers))
    assert b"".join(pieces) == whole
    assert all(pieces)  # no empty piece
    nested = {"outputs": [{"name": "a", "data": body["losses"]}, {"name": "b", "data": body["softmax"]}]}
    assert b"".join(json_chunks(nested, chunk_numbers)) == orjson.dumps(
        nested, option=orjson.OPT_SERIALIZE_NUMPY
    )


def test_large_arrays_are_cut_into_pieces() -> None:
    array = np.random.default_rng(1).normal(size=(2000, 100))
    pieces = list(json_chunks({"softmax": array}, 10_000))
    assert len(pieces) == 20 + 2  # "{\"softmax\":" and "}" apart: each block is over 64 KiB
    assert max(len(piece) for piece in pieces) < 10_000 * 25
    assert b"".join(pieces) == orjson.dumps({"softmax": array}, option=orjson.OPT_SERIALIZE_NUMPY)


def test_an_array_that_is_not_contiguous_is_written_by_rows() -> None:
    array = np.arange(24.0).reshape(4, 6)[:, ::2]
    assert b"".join(json_chunks({"a": array}, 2)) == orjson.dumps({"a": array.tolist()})


def test_numbers_in_counts_array_elements_only() -> None:
    assert numbers_in(_body()) == 1000 + 1050 + 200 + 100 + 300 + 180 + 1


def test_very_wide_rows_are_cut_too() -> None:
    rng = np.random.default_rng(3)
    for array in (rng.normal(size=(2, 50_000)), rng.normal(size=(1, 5, 20_000))):
        pieces = list(json_chunks({"a": array}, 10_000))
        assert b"".join(pieces) == orjson.dumps({"a": array}, option=orjson.OPT_SERIALIZE_NUMPY)
        assert max(len(piece) for piece in pieces) < 10_000 * 25


@pytest.mark.parametrize("version", ["3.12.0", "3.13.0", "3.14.1", "4.0.0", "4.0b1", "3.12.0rc2"])
def test_an_orjson_that_corrupts_the_heap_is_refused(version: str) -> None:
    with pytest.raises(RuntimeError, match=rf"orjson {version} is installed.*install orjson<3\.12"):
        check_serialiser(version)


@pytest.mark.parametrize("version", ["3.10.0", "3.11.9"])
def test_the_orjson_versions_found_safe_are_accepted(version: str) -> None:
    check_serialiser(version)


def test_the_installed_orjson_is_accepted_and_pyproject_pins_below_the_first_unsafe_one() -> None:
    check_serialiser()  # the installed version: what the test run serves with
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (orjson_requirement,) = [r for r in requirements if r.startswith("orjson")]
    assert f"<{'.'.join(map(str, FIRST_UNSAFE_ORJSON))}" in orjson_requirement.split(",")

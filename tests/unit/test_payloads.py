"""Response bodies written in pieces are the bytes orjson writes in one go."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from service.api.payloads import json_chunks, numbers_in


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
    assert all(pieces)  # no empty piece: the sender reads none as the end
    if chunk_numbers <= 100:
        # Large arrays really are cut: no piece holds much more than chunk_numbers numbers.
        assert max(len(piece) for piece in pieces) < 30 * max(chunk_numbers, 21) + 64
        assert len(pieces) > numbers_in(body) // max(chunk_numbers, 21)


def test_an_array_that_is_not_contiguous_is_written_by_rows() -> None:
    array = np.arange(24.0).reshape(4, 6)[:, ::2]
    assert b"".join(json_chunks({"a": array}, 2)) == orjson.dumps({"a": array.tolist()})


def test_numbers_in_counts_array_elements_only() -> None:
    assert numbers_in(_body()) == 1000 + 1050 + 200 + 100 + 300 + 180 + 1

"""Cross-entropy writing an output over the scores (``overwrite_scores``, ``scores.spare_x``): the
same results to the last bit as into fresh arrays, and the scores touched only when given up."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import NDArray

from service.core import cross_entropy
from service.core.kernels import PARALLEL_MIN_ELEMENTS, get_threads, set_threads
from service.core.options import ComputeDtype
from service.core.small import SMALL_INPUT_LIMIT
from service.core.vocabulary import CROSS_ENTROPY_OUTPUTS, CrossEntropyOutput, CrossEntropyResult

ARRAYS = cast(tuple[CrossEntropyOutput, ...], tuple(CROSS_ENTROPY_OUTPUTS))


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = get_threads()
    set_threads(2)
    yield
    set_threads(before)


def _bits(value: Any) -> NDArray[Any] | None:
    """The exact bits of a result (NaN where ignored compares equal to itself this way)."""
    if value is None:
        return None
    array = np.asarray(value)
    return array.view(f"u{array.dtype.itemsize}") if array.dtype.kind == "f" else array


def _assert_identical(given_up: CrossEntropyResult, kept: CrossEntropyResult) -> None:
    for name in ("loss", "count", *ARRAYS):
        a, b = _bits(getattr(given_up, name)), _bits(getattr(kept, name))
        assert (a is None) == (b is None), name
        if a is not None and b is not None:
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b, err_msg=name)


CASES = [
    pytest.param((300, 1000), "float64", {}, id="float64"),
    pytest.param((300, 1000), "float32", {}, id="float32"),
    pytest.param((500, 10), "float64", {}, id="few classes (class-major blocks)"),
    pytest.param(
        (300, 1000), "float64", {"label_smoothing": 0.1, "ignore_index": 3}, id="smoothing, ignored"
    ),
    pytest.param((300, 1000), "float32", {"reduction": "sum", "weight": True}, id="class weights, sum"),
    pytest.param((40, 30, 7), "float64", {}, id="K-dimensional"),
    pytest.param((300, 1000), "float64", {"soft": True}, id="soft targets"),
]


@pytest.mark.parametrize(("shape", "dtype", "options"), CASES)
@pytest.mark.parametrize(
    "outputs",
    [("losses", "softmax"), ARRAYS, ("losses", "log_softmax"), ("losses", "grad")],
    ids=["default outputs", "every array", "log_softmax", "grad"],
)
def test_writing_over_the_scores_changes_no_result_by_a_bit(
    shape: tuple[int, ...],
    dtype: ComputeDtype,
    options: dict[str, Any],
    outputs: tuple[CrossEntropyOutput, ...],
) -> None:
    rng = np.random.default_rng(7)
    options = dict(options)
    scores = (rng.normal(size=shape) * 4).astype(dtype)
    classes = shape[1]
    if options.pop("soft", False):
        target: NDArray[Any] = rng.dirichlet(np.ones(classes), size=shape[0]).astype(dtype)
        outputs = tuple(name for name in outputs if name not in ("predictions", "target_probability"))
    else:
        target = rng.integers(0, classes, (shape[0], *shape[2:]))
        target[::17] = options.get("ignore_index", -100)
    if options.pop("weight", False):
        options["weight"] = rng.random(classes)
    kept = cross_entropy(scores.copy(), target, dtype=dtype, outputs=outputs, **options)
    given = scores.copy()
    given_up = cross_entropy(given, target, dtype=dtype, outputs=outputs, overwrite_scores=True, **options)
    _assert_identical(given_up, kept)
    written = next(getattr(given_up, name) for name in ("softmax", "log_softmax", "grad") if name in outputs)
    # 2-D scores in the compute dtype are overwritten by the first batch-sized output; K-dimensional
    # ones are laid out class-last in a copy first, which is written over instead.
    assert np.shares_memory(written, given) == (len(shape) == 2)


def test_the_parallel_pass_writes_over_the_scores_alike(two_threads: None) -> None:
    rng = np.random.default_rng(3)
    rows = 2 * PARALLEL_MIN_ELEMENTS // 1000
    scores = rng.normal(size=(rows, 1000))
    target = rng.integers(0, 1000, rows)
    kept = cross_entropy(scores.copy(), target, outputs=ARRAYS)
    given = scores.copy()
    given_up = cross_entropy(given, target, outputs=ARRAYS, overwrite_scores=True)
    _assert_identical(given_up, kept)
    assert given_up.softmax is not None and np.shares_memory(given_up.softmax, given)


def test_scores_not_given_up_are_left_as_they_were() -> None:
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(300, 1000))
    target = rng.integers(0, 1000, 300)
    before = scores.copy()
    result = cross_entropy(scores, target)
    np.testing.assert_array_equal(scores, before)
    assert result.softmax is not None and not np.shares_memory(result.softmax, scores)

    scores.flags.writeable = False  # given up, but read-only: nothing is written over it
    result = cross_entropy(scores, target, overwrite_scores=True)
    np.testing.assert_array_equal(scores, before)
    assert result.softmax is not None and not np.shares_memory(result.softmax, scores)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_copy_made_for_the_compute_dtype_is_written_over_instead(threads: int) -> None:
    rng = np.random.default_rng(6)
    # Large enough that the pass's scratch blocks (a few per thread) are small beside the batch.
    scores = rng.normal(size=(2000, 1000)).astype(np.float32)
    target = rng.integers(0, 1000, 2000)
    before = scores.copy()
    assert scores.size > max(SMALL_INPUT_LIMIT, PARALLEL_MIN_ELEMENTS)  # the general path, in blocks
    previous = get_threads()
    set_threads(threads)  # the process-wide setting: whatever an earlier test left
    tracemalloc.start()
    try:
        result = cross_entropy(scores, target, dtype="float64")  # float32 in, float64 computed: a copy
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        set_threads(previous)
    np.testing.assert_array_equal(scores, before)
    assert result.softmax is not None and result.softmax.dtype == np.float64
    # The float64 copy of the scores, then the softmax over it: one batch-sized array, not two.
    batch = scores.size * 8
    assert batch < peak < 1.5 * batch

"""Properties of the core that hold for every input, checked with hypothesis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core import CrossEntropyOutput, cross_entropy, log_softmax, softmax

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

moderate = st.floats(-30, 30, allow_nan=False, allow_infinity=False)
batch_shapes = st.tuples(st.integers(1, 6), st.integers(1, 7))


@st.composite
def logits_and_targets(draw: st.DrawFn) -> tuple[FloatArray, np.ndarray[Any, Any]]:
    shape = draw(batch_shapes)
    x = draw(hnp.arrays(np.float64, shape, elements=moderate))
    target = draw(hnp.arrays(np.int64, shape[:1], elements=st.integers(0, shape[1] - 1)))
    return x, target


@st.composite
def options(draw: st.DrawFn, classes: int) -> dict[str, Any]:
    chosen: dict[str, Any] = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
    }
    if draw(st.booleans()):
        chosen["weight"] = draw(hnp.arrays(np.float64, (classes,), elements=st.floats(0.1, 3.0)))
    return chosen


@given(hnp.arrays(np.float64, batch_shapes, elements=st.floats(-1e307, 1e307)))
def test_softmax_rows_sum_to_one(x: FloatArray) -> None:
    p = softmax(x, axis=1)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all((p >= 0) & (p <= 1))


@given(hnp.arrays(np.float64, batch_shapes, elements=st.floats(-1e307, 1e307)))
def test_log_softmax_is_finite_and_consistent_with_softmax(x: FloatArray) -> None:
    lp = log_softmax(x, axis=1)
    assert np.all(np.isfinite(lp))
    assert np.all(lp <= 0)
    np.testing.assert_allclose(np.exp(lp), softmax(x, axis=1), rtol=1e-12, atol=1e-300)


@given(logits_and_targets(), st.floats(-1000, 1000), st.data())
def test_shifting_logits_by_a_constant_changes_nothing(
    case: tuple[FloatArray, np.ndarray[Any, Any]], shift: float, data: st.DataObject
) -> None:
    x, target = case
    chosen = data.draw(options(x.shape[1]))
    outputs: list[CrossEntropyOutput] = ["losses", "softmax", "grad"]
    base = cross_entropy(x, target, outputs=outputs, **chosen)
    moved = cross_entropy(x + shift, target, outputs=outputs, **chosen)
    # x + shift is rounded to the spacing of |shift| + 30: that much, not more, may differ.
    atol = 8 * np.spacing(abs(shift) + 30.0) * (1 + x.shape[1])
    for name in outputs:
        np.testing.assert_allclose(getattr(moved, name), getattr(base, name), rtol=1e-9, atol=atol)
    if base.loss is not None:
        assert moved.loss is not None
        np.testing.assert_allclose(moved.loss, base.loss, rtol=1e-9, atol=atol * x.shape[0])


def _loss_total(x: FloatArray, target: np.ndarray[Any, Any], kind: str, **chosen: Any) -> float:
    result = cross_entropy(x, target, input_kind=kind, outputs=["losses"], **chosen)  # type: ignore[arg-type]
    if result.loss is not None:
        return float(result.loss)
    assert result.losses is not None
    return float(np.sum(result.losses))


@settings(max_examples=60, deadline=None)
@given(logits_and_targets(), st.data())
def test_gradient_matches_finite_differences_for_logits(
    case: tuple[FloatArray, np.ndarray[Any, Any]], data: st.DataObject
) -> None:
    x, target = case
    x = np.clip(x, -8, 8)
    chosen = data.draw(options(x.shape[1]))
    _check_gradient(x, target, "logits", chosen)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 6), st.integers(2, 7)),
    st.sampled_from(["probabilities", "log_probabilities"]),
    st.data(),
)
def test_gradient_matches_finite_differences_for_distributions(
    shape: tuple[int, int], kind: str, data: st.DataObject
) -> None:
    raw = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.05, 1.0)))
    p = raw / raw.sum(axis=1, keepdims=True)
    x = p if kind == "probabilities" else np.log(p)
    target = data.draw(hnp.arrays(np.int64, shape[:1], elements=st.integers(0, shape[1] - 1)))
    soft = data.draw(st.booleans())
    if soft:
        y = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
        y = y + 1e-3
        target = y / y.sum(axis=1, keepdims=True)
    chosen = data.draw(options(shape[1]))
    _check_gradient(x, target, kind, chosen)


def _check_gradient(x: FloatArray, target: np.ndarray[Any, Any], kind: str, chosen: dict[str, Any]) -> None:
    result = cross_entropy(x, target, input_kind=kind, outputs=["grad"], **chosen)  # type: ignore[arg-type]
    assert result.grad is not None
    h = 1e-6
    estimate = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        forward = _loss_total(up, target, kind, **chosen)
        backward = _loss_total(down, target, kind, **chosen)
        estimate[index] = (forward - backward) / (2 * h)
    np.testing.assert_allclose(result.grad, estimate, rtol=1e-5, atol=1e-6)


@given(
    st.lists(st.integers(-5, 5), min_size=2, max_size=6),
    st.floats(1e20, 1e300),
    st.data(),
)
def test_huge_logits_give_exact_finite_results(ranks: list[int], scale: float, data: st.DataObject) -> None:
    x = np.array([ranks], dtype=np.float64) * scale
    target = data.draw(st.integers(0, len(ranks) - 1))
    result = cross_entropy(
        x,
        np.array([target]),
        reduction="none",
        outputs=["losses", "softmax", "log_softmax", "grad"],
    )
    assert result.losses is not None and result.softmax is not None
    # Every exp() but those of the k tied maxima underflows: the loss is max - x_t + log(k).
    ties = int(np.sum(x == x.max()))
    expected = x.max() - x[0, target] + np.log(ties)
    np.testing.assert_allclose(result.losses[0], expected, rtol=1e-15, atol=0)
    for array in (result.losses, result.softmax, result.log_softmax, result.grad):
        assert array is not None and np.all(np.isfinite(array))
    top = x[0] == x.max()
    np.testing.assert_allclose(result.softmax[0], top / top.sum(), rtol=1e-15)


def test_logits_of_plus_minus_1e300_are_exact() -> None:
    x = np.array([[1e300, -1e300, 0.0], [3.0, 1e300, -1e300]])
    result = cross_entropy(
        x, np.array([0, 2]), reduction="none", outputs=["losses", "softmax", "log_softmax", "grad"]
    )
    assert result.losses is not None
    assert result.losses.tolist() == [0.0, 2e300]
    assert result.softmax is not None
    assert result.softmax.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert result.log_softmax is not None
    assert result.log_softmax.tolist() == [[0.0, -2e300, -1e300], [-1e300, 0.0, -2e300]]


@given(logits_and_targets(), st.data())
def test_float32_agrees_with_float64(
    case: tuple[FloatArray, np.ndarray[Any, Any]], data: st.DataObject
) -> None:
    x, target = case
    x = np.clip(x, -20, 20)
    chosen = data.draw(options(x.shape[1]))
    outputs: list[CrossEntropyOutput] = ["losses", "softmax", "grad"]
    wide = cross_entropy(x, target, outputs=outputs, **chosen)
    narrow = cross_entropy(x, target, dtype="float32", outputs=outputs, **chosen)
    for name in outputs:
        got = getattr(narrow, name)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, getattr(wide, name), rtol=1e-5, atol=1e-5)
    if wide.loss is not None:
        assert narrow.loss is not None
        np.testing.assert_allclose(narrow.loss, wide.loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["probabilities", "log_probabilities"])
def test_distribution_inputs_are_not_renormalised(kind: str) -> None:
    p = np.array([[0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]])
    x = p if kind == "probabilities" else np.log(p)
    result = cross_entropy(x, np.array([4]), input_kind=kind)  # type: ignore[arg-type]
    assert result.loss is not None
    assert float(result.loss) == pytest.approx(-np.log(0.0875), rel=1e-15)


@pytest.mark.parametrize("shape", [(600, 1000), (70000, 10)])
def test_threads_agree_to_the_last_ulps(shape: tuple[int, int]) -> None:
    # Splitting the rows moves elements between SIMD lanes and the scalar tail of NumPy's exp, which
    # may differ by one unit in the last place; nothing more may change.
    from service.core import get_threads, set_threads
    from service.core.kernels import PARALLEL_MIN_ELEMENTS

    rng = np.random.default_rng(11)
    x = rng.normal(size=shape)
    assert x.size >= PARALLEL_MIN_ELEMENTS
    target = rng.integers(0, shape[1], shape[0])
    every: list[CrossEntropyOutput] = ["losses", "softmax", "log_softmax", "grad"]
    before = get_threads()
    try:
        set_threads(1)
        alone = cross_entropy(x, target, label_smoothing=0.1, outputs=[*every, "predictions"])
        set_threads(3)
        together = cross_entropy(x, target, label_smoothing=0.1, outputs=[*every, "predictions"])
    finally:
        set_threads(before)
    assert alone.loss is not None and together.loss is not None
    np.testing.assert_allclose(together.loss, alone.loss, rtol=1e-14)
    np.testing.assert_array_equal(together.predictions, alone.predictions)
    for name in every:
        np.testing.assert_array_max_ulp(getattr(together, name), getattr(alone, name), maxulp=4)


def test_an_ignored_row_whose_smoothing_term_overflows_float32_costs_nothing() -> None:
    # The row's sum of log-probabilities, about -4 x 9e37, overflows float32; the row is ignored,
    # so its loss is 0 (not inf * 0 = NaN, nor a warning), and the other row is answered as usual.
    x = np.array([[9e37, 0, 0, 0, 0], [1, 2, 3, 4, 5]] * 40)  # 400 numbers: the general path
    target = np.array([-100, 4] * 40)
    result = cross_entropy(x, target, label_smoothing=0.1, dtype="float32", outputs=["losses"])
    assert result.losses is not None and result.loss is not None
    assert result.losses[0] == 0
    row = np.arange(1.0, 6.0)
    lse = np.log(np.exp(row).sum())
    expected = 0.9 * (lse - row[4]) + 0.1 / 5 * (5 * lse - row.sum())
    np.testing.assert_allclose(result.losses[1], expected, rtol=1e-5)
    np.testing.assert_allclose(result.loss, expected, rtol=1e-5)


def test_an_ignored_row_of_huge_negative_log_probabilities_costs_nothing() -> None:
    # log [1, 0, 0, 0, 0] written with -3e38 for log 0: its smoothing sum overflows float32, but the
    # row is ignored.
    x = np.array([[0, -3e38, -3e38, -3e38, -3e38], np.log([0.1, 0.2, 0.3, 0.2, 0.2])])
    result = cross_entropy(
        x,
        np.array([-100, 2]),
        input_kind="log_probabilities",
        label_smoothing=0.1,
        dtype="float32",
        outputs=["losses"],
    )
    assert result.losses is not None and result.losses[0] == 0
    expected = -0.9 * np.log(0.3) - 0.1 / 5 * np.log([0.1, 0.2, 0.3, 0.2, 0.2]).sum()
    np.testing.assert_allclose(result.losses[1], expected, rtol=1e-5)

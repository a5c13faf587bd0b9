"""Properties of binary cross-entropy, tempered softmax and the divergences, checked with hypothesis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core import (
    InvalidInputError,
    Reduction,
    binary_cross_entropy,
    cross_entropy,
    divergence,
    sigmoid,
    tempered_softmax,
)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
finite = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-50, 50)), st.data())
def test_sigmoid_bce_equals_two_class_softmax_cross_entropy(x: FloatArray, data: st.DataObject) -> None:
    hard = data.draw(hnp.arrays(np.int64, x.shape, elements=st.integers(0, 1)))
    binary = binary_cross_entropy(x, hard.astype(np.float64), reduction="none", outputs=["losses", "grad"])
    two_class = np.stack([np.zeros_like(x), x], axis=1)  # softmax([0, x])[1] = sigmoid(x)
    multi = cross_entropy(two_class, hard, reduction="none", outputs=["losses", "grad"])
    assert binary.losses is not None and multi.losses is not None
    np.testing.assert_allclose(binary.losses, multi.losses, rtol=1e-12, atol=1e-14)
    assert binary.grad is not None and multi.grad is not None
    np.testing.assert_allclose(binary.grad, multi.grad[:, 1], rtol=1e-10, atol=1e-14)


@given(hnp.arrays(np.float64, st.integers(1, 10), elements=st.floats(-30, 30)), st.data())
def test_soft_labels_bce_equals_soft_two_class_cross_entropy(x: FloatArray, data: st.DataObject) -> None:
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(0, 1)))
    binary = binary_cross_entropy(x, y, reduction="none", outputs=["losses"])
    two_class = np.stack([np.zeros_like(x), x], axis=1)
    multi = cross_entropy(two_class, np.stack([1 - y, y], axis=1), reduction="none", outputs=["losses"])
    assert binary.losses is not None and multi.losses is not None
    np.testing.assert_allclose(binary.losses, multi.losses, rtol=1e-10, atol=1e-12)


@given(hnp.arrays(np.float64, st.integers(1, 10), elements=finite), st.data())
def test_bce_is_finite_for_any_finite_logits(x: FloatArray, data: st.DataObject) -> None:
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=st.sampled_from([0.0, 0.5, 1.0])))
    result = binary_cross_entropy(x, y, reduction="none", outputs=["losses", "sigmoid", "grad"])
    for array in (result.losses, result.sigmoid, result.grad):
        assert array is not None and np.all(np.isfinite(array))
    assert result.losses is not None
    assert np.all(result.losses >= 0)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-8, 8)), st.data())
def test_bce_gradient_matches_finite_differences(x: FloatArray, data: st.DataObject) -> None:
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(0, 1)))
    pos_weight = data.draw(st.sampled_from([None, np.array([2.5])]))
    reduction: Reduction = data.draw(st.sampled_from(["mean", "sum"]))
    result = binary_cross_entropy(x, y, pos_weight=pos_weight, reduction=reduction, outputs=["grad"])
    h = 1e-6
    estimate = np.zeros_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        forward = binary_cross_entropy(up, y, pos_weight=pos_weight, reduction=reduction).loss
        backward = binary_cross_entropy(down, y, pos_weight=pos_weight, reduction=reduction).loss
        assert forward is not None and backward is not None
        estimate[i] = (forward - backward) / (2 * h)
    assert result.grad is not None
    np.testing.assert_allclose(result.grad, estimate, rtol=1e-5, atol=1e-7)


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e300, 1e300)))
def test_sigmoid_is_in_the_unit_interval(x: FloatArray) -> None:
    s = sigmoid(x)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(s + sigmoid(-x), 1.0, rtol=0, atol=1e-15)


@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 5), st.integers(2, 8)), elements=st.integers(-20, 20).map(float)
    ),
    st.floats(1e-6, 1e-3),
)
def test_softmax_approaches_one_hot_as_temperature_goes_to_zero(x: FloatArray, temperature: float) -> None:
    probabilities, _ = tempered_softmax(x, temperature=temperature)
    top = x == x.max(axis=1, keepdims=True)
    # Logits are integers: every other class is at least 1 below the maximum, exp(-1/T) of it.
    expected = top / top.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=x.shape[1] * np.exp(-1 / temperature))


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-10, 10)))
def test_softmax_approaches_uniform_as_temperature_grows(x: FloatArray) -> None:
    probabilities, _ = tempered_softmax(x, temperature=1e9)
    np.testing.assert_allclose(probabilities, 1 / x.shape[1], rtol=1e-7)


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
        elements=st.floats(-50, 50),
    ),
    st.integers(-3, 2),
)
def test_softmax_sums_to_one_along_any_dim(x: FloatArray, dim: int) -> None:
    probabilities, log_probabilities = tempered_softmax(x, dim=dim, temperature=0.7)
    np.testing.assert_allclose(probabilities.sum(axis=dim), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_probabilities), probabilities, rtol=1e-12, atol=1e-300)


@st.composite
def distribution_pairs(draw: st.DrawFn) -> tuple[FloatArray, FloatArray]:
    shape = draw(st.tuples(st.integers(1, 5), st.integers(1, 8)))
    raw_p = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    raw_q = draw(hnp.arrays(np.float64, shape, elements=st.floats(1e-6, 1)))
    raw_p[:, 0] += 1e-3  # never all zero
    return raw_p / raw_p.sum(axis=1, keepdims=True), raw_q / raw_q.sum(axis=1, keepdims=True)


@given(distribution_pairs(), st.sampled_from(["e", "2", "10"]))
def test_cross_entropy_is_entropy_plus_kl(pair: tuple[FloatArray, FloatArray], base: Any) -> None:
    p, q = pair
    result = divergence(p, q, base=base, reduction="none")
    np.testing.assert_allclose(
        result.cross_entropies, result.entropies + result.kl_divergences, rtol=1e-12, atol=1e-12
    )


@given(distribution_pairs())
def test_kl_divergence_is_non_negative_and_zero_for_equal_distributions(
    pair: tuple[FloatArray, FloatArray],
) -> None:
    p, q = pair
    result = divergence(p, q, reduction="none")
    assert np.all(result.kl_divergences >= -1e-15)
    same = divergence(p, p, reduction="none")
    np.testing.assert_allclose(same.kl_divergences, 0.0, atol=1e-15)


@given(distribution_pairs())
def test_bits_are_nats_over_log_2(pair: tuple[FloatArray, FloatArray]) -> None:
    p, q = pair
    nats = divergence(p, q, base="e")
    bits = divergence(p, q, base="2")
    assert nats.cross_entropy is not None and bits.cross_entropy is not None
    np.testing.assert_allclose(bits.cross_entropy, nats.cross_entropy / np.log(2), rtol=1e-14)


def test_seed_fashion_mnist_divergence() -> None:
    q = np.array([0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958])
    result = divergence(np.eye(10)[4], q)
    assert result.cross_entropy is not None and result.kl_divergence is not None
    assert round(float(result.cross_entropy), 4) == 2.4361
    assert float(result.entropy or 0.0) == 0.0
    assert float(result.kl_divergence) == pytest.approx(float(result.cross_entropy), rel=1e-15)


def test_bce_for_probabilities_matches_the_formula_with_clipping() -> None:
    p = np.array([0.0, 1.0, 0.3])
    y = np.array([1.0, 0.0, 1.0])
    result = binary_cross_entropy(p, y, input_kind="probabilities", reduction="none", outputs=["losses"])
    eps = np.finfo(np.float64).eps
    assert result.losses is not None
    np.testing.assert_allclose(result.losses, [-np.log(eps), -np.log(eps), -np.log(0.3)], rtol=1e-15)


def test_pos_weight_with_probabilities_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="pos_weight applies to logits only"):
        binary_cross_entropy(
            np.array([0.5]), np.array([1.0]), input_kind="probabilities", pos_weight=np.array([2.0])
        )

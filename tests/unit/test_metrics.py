"""Sample weights and the metrics against the libraries that define them.

scikit-learn 1.9 (``log_loss``, ``accuracy_score``, ``top_k_accuracy_score``, ``brier_score_loss``) and
torchmetrics 1.9 (``MulticlassAccuracy``, ``MulticlassCalibrationError``, ``Perplexity``,
``BinaryAccuracy``) with PyTorch 2.13, computed here from the same arrays; then the properties the
definitions imply (weights of 1 are no weights, scaling every weight changes nothing, the calibration
bins hold every counted sample).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, top_k_accuracy_score
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy, MulticlassCalibrationError
from torchmetrics.text import Perplexity

from service.core import InvalidInputError, binary_cross_entropy, cross_entropy
from service.core.vocabulary import CROSS_ENTROPY_METRICS

Array = np.ndarray[Any, Any]
RNG = np.random.default_rng(17)
EVERY_METRIC: list[Any] = list(CROSS_ENTROPY_METRICS)


def _problem(rows: int = 200, classes: int = 5) -> tuple[Array, Array, Array]:
    logits = RNG.normal(0, 2, (rows, classes))
    target = RNG.integers(0, classes, rows)
    v = RNG.uniform(0, 3, rows)
    return logits, target, v


def _f(value: Any) -> float:
    """A scalar result that must be defined."""
    assert value is not None
    return float(value)


def _a(value: Any) -> Array:
    """An array result that must be present."""
    assert value is not None
    return np.asarray(value)


def _softmax(x: Array, axis: int = 1) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)  # type: ignore[no-any-return]


# --- sample weights -----------------------------------------------------------------------------


def test_sample_weighted_mean_is_scikit_learns_log_loss() -> None:
    logits, target, v = _problem()
    p = _softmax(logits)
    result = cross_entropy(p, target, input_kind="probabilities", sample_weight=v, outputs=[])
    expected = log_loss(target, p, sample_weight=v, labels=range(5))
    assert _f(result.loss) == pytest.approx(expected, rel=1e-12)
    unweighted = cross_entropy(p, target, input_kind="probabilities", outputs=[])
    assert _f(result.loss) != pytest.approx(_f(unweighted.loss), rel=1e-6)  # the weights matter


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_sample_and_class_weights_multiply_in_loss_and_gradient(reduction: Any, smoothing: float) -> None:
    logits, target, v = _problem(60, 4)
    target[::7] = -100
    w = np.array([0.5, 2.0, 1.0, 3.0])
    result = cross_entropy(
        logits,
        target,
        weight=w,
        sample_weight=v,
        reduction=reduction,
        label_smoothing=smoothing,
        outputs=["losses", "grad"],
    )
    x = torch.tensor(logits, requires_grad=True)
    losses = torch.nn.functional.cross_entropy(
        x, torch.tensor(target), weight=torch.tensor(w), reduction="none", label_smoothing=smoothing
    )
    kept = torch.tensor(target != -100)
    tw = torch.where(kept, torch.tensor(w)[torch.tensor(target).clamp(min=0)], 0)
    weighted = (torch.tensor(v) * losses).sum()
    total = weighted / (torch.tensor(v) * tw).sum() if reduction == "mean" else weighted
    (x_grad,) = torch.autograd.grad(total, x)
    np.testing.assert_allclose(_a(result.losses), losses.detach().numpy(), rtol=1e-12)  # unweighted by v
    np.testing.assert_allclose(_a(result.grad), x_grad.numpy(), rtol=1e-10, atol=1e-15)
    if reduction == "none":
        assert result.loss is None
    else:
        assert _f(result.loss) == pytest.approx(total.item(), rel=1e-12)


def test_k_dimensional_sample_weights_and_soft_targets() -> None:
    logits = RNG.normal(0, 1, (3, 4, 2, 5))
    v = RNG.uniform(0, 2, (3, 2, 5))
    soft = _softmax(RNG.normal(0, 1, (3, 4, 2, 5)))
    result = cross_entropy(logits, soft, sample_weight=v, outputs=["losses"])
    assert result.losses is not None
    expected = (v * _a(result.losses)).sum() / v.sum()
    assert _f(result.loss) == pytest.approx(expected, rel=1e-12)


def test_zero_total_sample_weight_gives_a_null_loss_and_zero_gradient() -> None:
    logits, target, _ = _problem(10, 3)
    result = cross_entropy(logits, target, sample_weight=np.zeros(10), outputs=["grad", "accuracy"])
    assert result.loss is None and result.accuracy is None
    assert result.grad is not None and not result.grad.any()


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(3), "needs one weight per sample"),
        (np.array([1.0, -1.0, 1.0, 1.0]), "is negative"),
        (np.array([1.0, np.nan, 1.0, 1.0]), "not a finite number"),
    ],
)
def test_bad_sample_weights_are_refused_by_name(weights: Array, message: str) -> None:
    logits, target, _ = _problem(4, 3)
    with pytest.raises(InvalidInputError) as raised:
        cross_entropy(logits, target, sample_weight=weights)
    assert raised.value.issues[0].loc[0] == "sample_weight"
    assert message in raised.value.issues[0].msg


def test_binary_sample_weight_applies_to_each_label() -> None:
    logits = RNG.normal(0, 2, (30, 4))
    y = RNG.integers(0, 2, (30, 4)).astype(np.float64)
    v = RNG.uniform(0, 2, 30)
    result = binary_cross_entropy(logits, y, sample_weight=v, outputs=["losses", "grad"])
    x = torch.tensor(logits, requires_grad=True)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(x, torch.tensor(y), reduction="none")
    total = (torch.tensor(v)[:, None] * losses).sum() / (v.sum() * 4)
    (x_grad,) = torch.autograd.grad(total, x)
    assert _f(result.loss) == pytest.approx(total.item(), rel=1e-12)
    np.testing.assert_allclose(_a(result.losses), losses.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(_a(result.grad), x_grad.numpy(), rtol=1e-10, atol=1e-15)


# --- the metrics against scikit-learn and torchmetrics -----------------------------------------------


def test_accuracy_brier_and_top_k_are_scikit_learns_with_sample_weights() -> None:
    logits, target, v = _problem()
    p = _softmax(logits)
    result = cross_entropy(
        logits, target, sample_weight=v, top_k=2, outputs=["accuracy", "top_k_accuracy", "brier_score"]
    )
    labels = list(range(5))
    assert _f(result.accuracy) == pytest.approx(
        accuracy_score(target, p.argmax(1), sample_weight=v), rel=1e-12
    )
    expected_top2 = top_k_accuracy_score(target, p, k=2, sample_weight=v, labels=labels)
    assert _f(result.top_k_accuracy) == pytest.approx(expected_top2, rel=1e-12)
    expected_brier = brier_score_loss(target, p, sample_weight=v, labels=labels)
    assert _f(result.brier_score) == pytest.approx(expected_brier, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_ties_are_ranked_as_scikit_learn_ranks_them(k: int) -> None:
    # Every row has tied probabilities: the higher class index ranks first.
    p = np.array([[0.25, 0.25, 0.25, 0.25], [0.4, 0.4, 0.1, 0.1], [0.1, 0.3, 0.3, 0.3], [0.5, 0.5, 0.0, 0.0]])
    for t in range(4):
        target = np.full(4, t)
        result = cross_entropy(p, target, input_kind="probabilities", top_k=k, outputs=["top_k_accuracy"])
        expected = top_k_accuracy_score(target, p, k=k, labels=[0, 1, 2, 3])
        assert _f(result.top_k_accuracy) == expected, (k, t)


def test_accuracy_with_ignored_k_dimensional_targets_is_torchmetrics() -> None:
    logits = torch.tensor(RNG.normal(0, 1, (6, 4, 7)))
    target = torch.tensor(RNG.integers(0, 4, (6, 7)))
    target[0, :3] = -100
    result = cross_entropy(logits.numpy(), target.numpy(), outputs=["accuracy", "calibration"])
    metric = MulticlassAccuracy(num_classes=4, average="micro", ignore_index=-100)
    assert _f(result.accuracy) == pytest.approx(metric(logits, target).item(), rel=1e-6)  # float32
    assert result.calibration is not None
    assert int(result.calibration["count"].sum()) == 6 * 7 - 3


@pytest.mark.parametrize("bins", [15, 4, 1])
def test_calibration_is_torchmetrics_l1_calibration_error(bins: int) -> None:
    logits, target, _ = _problem(500, 6)
    target[:20] = -100
    result = cross_entropy(logits, target, calibration_bins=bins, outputs=["calibration"])
    metric = MulticlassCalibrationError(num_classes=6, n_bins=bins, norm="l1", ignore_index=-100)
    expected = metric(torch.tensor(logits), torch.tensor(target)).item()
    assert result.calibration is not None
    assert float(result.calibration["ece"]) == pytest.approx(
        expected, rel=1e-6
    )  # torchmetrics: float32 edges


def test_calibration_bins_hold_confidence_one_apart() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.95, 0.05], [0.3, 0.7]])
    result = cross_entropy(p, np.array([0, 1, 0, 0]), input_kind="probabilities", outputs=["calibration"])
    cal = result.calibration
    assert cal is not None and cal["bins"] == 15 and len(cal["count"]) == 16
    assert cal["count"][-1] == 1  # confidence exactly 1
    assert cal["count"][7] == 1  # 0.5 is in [7/15, 8/15)
    assert cal["count"][10] == 1  # 0.7 is in [10/15, 11/15)
    assert cal["count"][14] == 1  # 0.95 is in [14/15, 1)
    assert np.isnan(cal["confidence"][0]) and cal["accuracy"][10] == 0.0
    metric = MulticlassCalibrationError(num_classes=2, n_bins=15, norm="l1")
    expected = metric(torch.tensor(p), torch.tensor([0, 1, 0, 0])).item()
    assert float(cal["ece"]) == pytest.approx(expected, rel=1e-6)


def test_perplexity_is_torchmetrics_for_sequences_with_ignored_tokens() -> None:
    preds = torch.tensor(RNG.normal(0, 1, (4, 9, 11)))  # torchmetrics: (N, seq, vocab)
    target = torch.tensor(RNG.integers(0, 11, (4, 9)))
    target[1, 5:] = -100
    metric = Perplexity(ignore_index=-100)
    expected = metric(preds, target).item()
    result = cross_entropy(preds.permute(0, 2, 1).numpy(), target.numpy(), outputs=["perplexity"])
    assert _f(result.perplexity) == pytest.approx(expected, rel=1e-6)  # torchmetrics: float32


@pytest.mark.parametrize("kind", ["logits", "probabilities", "log_probabilities"])
def test_entropy_is_torch_categorical_entropy(kind: Any) -> None:
    logits = RNG.normal(0, 3, (3, 5, 4))
    p = _softmax(logits)
    given = {"logits": logits, "probabilities": p, "log_probabilities": np.log(p)}[kind]
    result = cross_entropy(given, np.zeros((3, 4), dtype=np.int64), input_kind=kind, outputs=["entropy"])
    expected = torch.special.entr(torch.softmax(torch.tensor(logits), dim=1)).sum(dim=1)
    assert result.entropy is not None and result.entropy.shape == (3, 4)
    np.testing.assert_allclose(_a(result.entropy), expected.numpy(), rtol=1e-10)


def test_binary_accuracy_and_brier_are_torchmetrics_and_scikit_learns() -> None:
    logits = RNG.normal(0, 2, 300)
    y = RNG.integers(0, 2, 300)
    v = RNG.uniform(0, 2, 300)
    p = 1 / (1 + np.exp(-logits))
    for threshold in (0.5, 0.3):
        result = binary_cross_entropy(logits, y.astype(float), threshold=threshold, outputs=["accuracy"])
        expected = BinaryAccuracy(threshold=threshold)(torch.tensor(p), torch.tensor(y)).item()
        assert _f(result.accuracy) == pytest.approx(expected, rel=1e-6)
    weighted = binary_cross_entropy(
        logits, y.astype(float), sample_weight=v, outputs=["accuracy", "brier_score"]
    )
    assert _f(weighted.accuracy) == pytest.approx(accuracy_score(y, p > 0.5, sample_weight=v), rel=1e-12)
    assert _f(weighted.brier_score) == pytest.approx(brier_score_loss(y, p, sample_weight=v), rel=1e-12)


def test_index_metrics_refuse_soft_targets_and_bad_options() -> None:
    logits = RNG.normal(0, 1, (4, 3))
    soft = _softmax(RNG.normal(0, 1, (4, 3)))
    with pytest.raises(InvalidInputError, match="needs index targets"):
        cross_entropy(logits, soft, outputs=["accuracy"])
    with pytest.raises(InvalidInputError, match="top_k = 0"):
        cross_entropy(logits, np.zeros(4, dtype=np.int64), top_k=0, outputs=["top_k_accuracy"])
    with pytest.raises(InvalidInputError, match="calibration_bins = 0"):
        cross_entropy(logits, np.zeros(4, dtype=np.int64), calibration_bins=0, outputs=["calibration"])


def test_perplexity_that_overflows_is_refused() -> None:
    logits = np.array([[0.0, 1000.0]] * 3)
    with pytest.raises(InvalidInputError, match="perplexity"):
        cross_entropy(logits, np.zeros(3, dtype=np.int64), outputs=["perplexity"])


# --- properties ---------------------------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn) -> tuple[Array, Array]:
    rows, classes = draw(st.integers(1, 40)), draw(st.integers(2, 6))
    logits = draw(hnp.arrays(np.float64, (rows, classes), elements=st.floats(-20, 20)))
    target = draw(hnp.arrays(np.int64, (rows,), elements=st.integers(0, classes - 1) | st.just(-100)))
    return logits, target


def _all(result: Any) -> dict[str, Any]:
    values = {name: getattr(result, name) for name in ("loss", *EVERY_METRIC) if name != "calibration"}
    if result.calibration is not None:
        values["ece"] = result.calibration["ece"]
        values["bin_weight"] = result.calibration["weight"]
    return values


def _assert_same(left: dict[str, Any], right: dict[str, Any], *, scale: float = 1.0) -> None:
    for name, value in left.items():
        other = right[name]
        if value is None:
            assert other is None, name
            continue
        factor = scale if name == "bin_weight" else 1.0
        np.testing.assert_allclose(np.asarray(other), np.asarray(value) * factor, rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_weights_of_one_are_no_weights(problem: tuple[Array, Array]) -> None:
    logits, target = problem
    plain = cross_entropy(logits, target, outputs=EVERY_METRIC)
    ones = cross_entropy(logits, target, sample_weight=np.ones(len(target)), outputs=EVERY_METRIC)
    _assert_same(_all(plain), _all(ones))


@settings(max_examples=60, deadline=None)
@given(problems(), st.floats(1e-3, 1e3), st.integers(0, 2**31))
def test_scaling_every_weight_changes_nothing(problem: tuple[Array, Array], scale: float, seed: int) -> None:
    logits, target = problem
    v = np.random.default_rng(seed).uniform(0.1, 2, len(target))
    before = cross_entropy(logits, target, sample_weight=v, outputs=EVERY_METRIC)
    after = cross_entropy(logits, target, sample_weight=v * scale, outputs=EVERY_METRIC)
    _assert_same(_all(before), _all(after), scale=scale)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(1, 30))
def test_the_calibration_bins_hold_every_counted_sample(problem: tuple[Array, Array], bins: int) -> None:
    logits, target = problem
    result = cross_entropy(logits, target, calibration_bins=bins, outputs=["calibration", "accuracy"])
    cal = result.calibration
    assert cal is not None and len(cal["count"]) == bins + 1
    counted = int(np.count_nonzero(target != -100))
    assert int(cal["count"].sum()) == result.count == counted
    if counted:
        accuracy = cal["correct_weight"].sum() / cal["weight"].sum()
        assert accuracy == pytest.approx(_f(result.accuracy), rel=1e-12)
        assert 0 <= float(cal["ece"]) <= 1


@pytest.mark.parametrize("name", ["accuracy", "top_k_accuracy", "brier_score", "calibration"])
def test_weights_whose_sum_overflows_are_refused_not_sent_as_zero(name: Any) -> None:
    huge = np.array([1e308, 1e308, 1.0])
    with pytest.raises(InvalidInputError, match=f"the {name} of these logits is not representable"):
        cross_entropy(
            np.zeros((3, 4)), np.array([0, 1, 2]), sample_weight=huge, reduction="none", outputs=[name]
        )
    with pytest.raises(InvalidInputError, match="the accuracy of these logits is not representable"):
        binary_cross_entropy(
            np.zeros(3), np.array([0.0, 1, 1]), sample_weight=huge, reduction="none", outputs=["accuracy"]
        )

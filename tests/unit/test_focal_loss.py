"""The focal loss against a PyTorch reference written from its definitions, and against the core's
cross-entropies (``gamma = 0``, no ``alpha``), which need no PyTorch.

Sigmoid: ``torchvision.ops.sigmoid_focal_loss``'s documented formula (torchvision is not installed
here); softmax: ``-alpha[t] * (1 - p_t)**gamma * log p_t``, ignored targets 0, mean over the rest.
Gradients come from PyTorch's autograd. Where ``1 - p_t`` rounds to 0 in PyTorch's arithmetic (a
logit of -40 for a negative) and ``gamma < 1``, autograd meets ``0 ** (gamma - 1) = inf`` and gives NaN;
the service takes that term's limit, 0, and its gradient there must be finite and negligible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core import InvalidInputError, binary_cross_entropy, cross_entropy
from service.core.focal import focal_loss
from service.core.vocabulary import FOCAL_OUTPUTS, FocalOutput

EVERY: list[FocalOutput] = list(FOCAL_OUTPUTS)  # type: ignore[arg-type]
GAMMAS = [0.0, 0.5, 2.0, 3.5]
REDUCTIONS = ["mean", "sum", "none"]
#: (rtol, atol) by dtype, as the golden cases.
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - the test extra's scripts/test installs torch
        pytest.skip("PYTORCH NOT INSTALLED: the focal loss reference needs the bench extra (torch==2.13.0)")
    return torch


def _reduce(torch: Any, losses: Any, reduction: str, count: Any) -> Any:
    if reduction == "none":
        return losses.sum()  # the gradient of "none" is that of the sum
    return losses.sum() / count if reduction == "mean" else losses.sum()


def _sigmoid_reference(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], alpha: float, gamma: float, reduction: str, dtype: str
) -> tuple[Any, Any, Any, Any]:
    """torchvision.ops.sigmoid_focal_loss, as documented, with autograd's gradient."""
    torch = _torch()
    kind = getattr(torch, dtype)
    inputs = torch.tensor(x, dtype=kind, requires_grad=True)
    targets = torch.tensor(y, dtype=kind)
    p = torch.sigmoid(inputs)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    total = _reduce(torch, loss, reduction, loss.numel())
    total.backward()
    reduced = None if reduction == "none" else total.item()
    return reduced, loss.detach().numpy(), p.detach().numpy(), inputs.grad.numpy()


def _softmax_reference(
    x: np.ndarray[Any, Any],
    t: np.ndarray[Any, Any],
    alpha: Any,
    gamma: float,
    reduction: str,
    dtype: str,
    ignore: int,
) -> tuple[Any, Any, Any, Any]:
    """The multi-class focal loss along dimension 1, with autograd's gradient."""
    torch = _torch()
    kind = getattr(torch, dtype)
    inputs = torch.tensor(x, dtype=kind, requires_grad=True)
    targets = torch.tensor(t)
    keep = targets != ignore
    safe = torch.where(keep, targets, 0)
    log_p = torch.nn.functional.log_softmax(inputs, dim=1)
    log_p_t = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    weight = torch.tensor(alpha, dtype=kind)[safe] if alpha is not None else torch.ones_like(log_p_t)
    loss = -weight * (1 - log_p_t.exp()) ** gamma * log_p_t
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    total = _reduce(torch, loss, reduction, keep.sum())
    total.backward()
    reduced = None if reduction == "none" else total.item()
    return reduced, loss.detach().numpy(), log_p.exp().detach().numpy(), inputs.grad.numpy()


def _check(got: Any, want: tuple[Any, Any, Any, Any], dtype: str, reduction: str) -> None:
    rtol, atol = TOLERANCES[dtype]
    loss, losses, probabilities, grad = want
    if loss is None:
        assert got.loss is None
    else:
        np.testing.assert_allclose(float(got.loss), loss, rtol=rtol, atol=atol)
    if reduction == "mean" and loss is None:
        return
    np.testing.assert_allclose(got.losses, losses, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got.probabilities, probabilities, rtol=rtol, atol=atol)
    undefined = np.isnan(grad)
    assert np.all(np.abs(got.grad[undefined]) < 1e-20)
    np.testing.assert_allclose(got.grad[~undefined], grad[~undefined], rtol=rtol, atol=atol)
    for name in EVERY:
        assert getattr(got, name).dtype == np.dtype(dtype), name


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_form_is_torchvisions(gamma: float, alpha: float | None, reduction: str, dtype: str) -> None:
    rng = np.random.default_rng(int(gamma * 10) + len(reduction))
    x = rng.normal(size=(4, 3)) * 4
    x[0, 0], x[1, 1] = 40.0, -40.0  # p rounds to 1 and to 0
    y = (rng.random((4, 3)) > 0.5).astype(np.float64)
    y[2, 2] = 0.3  # a soft label
    got = focal_loss(x, y, gamma=gamma, alpha=alpha, reduction=reduction, dtype=dtype, outputs=EVERY)  # type: ignore[arg-type]
    want = _sigmoid_reference(x, y, -1.0 if alpha is None else alpha, gamma, reduction, dtype)
    _check(got, want, dtype, reduction)
    assert got.count == x.size


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2), (40, 5)])
def test_softmax_form_is_the_reference(
    shape: tuple[int, ...], gamma: float, weighted: bool, reduction: str, dtype: str
) -> None:
    rng = np.random.default_rng(sum(shape) + int(gamma * 10))
    x = rng.normal(size=shape) * 3
    classes = shape[1]
    t = rng.integers(0, classes, size=shape[:1] + shape[2:])
    t.flat[1] = -100
    alpha = rng.random(classes) * 2 if weighted else None
    got = focal_loss(x, t, gamma=gamma, alpha=alpha, reduction=reduction, dtype=dtype, outputs=EVERY)  # type: ignore[arg-type]
    want = _softmax_reference(x, t, alpha, gamma, reduction, dtype, -100)
    _check(got, want, dtype, reduction)
    assert got.count == t.size - 1


def test_gamma_zero_is_cross_entropy() -> None:
    x, t = np.array([[-1, 0.5, 2], [-1, 0.5, 3], [0.2, 0.1, 0.0]]), np.array([1, 2, -100])
    weight = np.array([1.0, 2.0, 0.5])
    focal = focal_loss(x, t, gamma=0.0, alpha=weight, reduction="sum", outputs=EVERY)
    plain = cross_entropy(x, t, weight=weight, reduction="sum", outputs=["losses", "softmax", "grad"])
    assert focal.loss is not None and plain.loss is not None
    assert focal.losses is not None and focal.probabilities is not None and focal.grad is not None
    assert plain.losses is not None and plain.softmax is not None and plain.grad is not None
    np.testing.assert_allclose(focal.loss, plain.loss, rtol=1e-14)
    np.testing.assert_allclose(focal.losses, plain.losses, rtol=1e-14)
    np.testing.assert_allclose(focal.probabilities, plain.softmax, rtol=1e-14)
    np.testing.assert_allclose(focal.grad, plain.grad, rtol=1e-13, atol=1e-16)


def test_gamma_zero_without_alpha_is_binary_cross_entropy() -> None:
    x, y = np.array([[1e300, -3.0], [0.5, -1e300]]), np.array([[1.0, 0.0], [0.2, 0.0]])
    focal = focal_loss(x, y, gamma=0.0, outputs=EVERY)
    plain = binary_cross_entropy(x, y, outputs=["losses", "sigmoid", "grad"])
    assert focal.loss == plain.loss
    assert focal.grad is not None and plain.grad is not None
    np.testing.assert_array_equal(focal.losses, plain.losses)
    np.testing.assert_array_equal(focal.probabilities, plain.sigmoid)
    # Two formulas for one gradient: (p - y) here, (1 - y) - sigmoid(-x) there; they agree to rounding.
    np.testing.assert_allclose(focal.grad, plain.grad, rtol=1e-14)


def test_a_confident_right_answer_costs_almost_nothing() -> None:
    """What the focal term is for: (1 - p_t)**gamma shrinks an easy example's loss by far more than a
    hard one's."""
    x, t = np.array([[4.0, 0.0], [0.0, 0.5]]), np.array([0, 0])
    plain = focal_loss(x, t, gamma=0.0, reduction="none")
    focal = focal_loss(x, t, gamma=2.0, reduction="none")
    assert plain.losses is not None and focal.losses is not None
    easy, hard = focal.losses / plain.losses
    assert easy < 1e-3 < 0.3 < hard < 1


def test_every_target_ignored_leaves_the_mean_undefined() -> None:
    result = focal_loss(np.array([[1.0, 2.0]]), np.array([-100]), outputs=["grad"])
    assert result.loss is None and result.count == 0
    assert result.grad is not None and not result.grad.any()


@pytest.mark.parametrize(
    ("logits", "target", "options", "loc", "kind"),
    [
        ([[1.0, 2.0]], [0], {"gamma": -1.0}, ("gamma",), "out_of_range"),
        ([[1.0, 2.0]], [0], {"gamma": float("nan")}, ("gamma",), "out_of_range"),
        ([[1.0, 2.0]], [0], {"alpha": 0.5}, ("alpha",), "shape"),
        ([[1.0, 2.0]], [0], {"alpha": [1.0, -1.0]}, ("alpha", 1), "out_of_range"),
        ([[1.0, 2.0]], [2], {}, ("target", 0), "out_of_range"),
        ([1.0, 2.0], [1.0, 0.0], {"alpha": 1.5}, ("alpha",), "out_of_range"),
        ([1.0, 2.0], [1.0, 0.0], {"alpha": [0.5, 0.5]}, ("alpha",), "out_of_range"),
        ([1.0, 2.0], [1.0, 2.0], {}, ("target", 1), "out_of_range"),
        ([1.0, float("nan")], [1.0, 0.0], {}, ("logits", 1), "not_finite"),
        ([[1.0, 2.0]], [0], {"outputs": ["softmax"]}, ("outputs", 0), "enum"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    logits: Any, target: Any, options: dict[str, Any], loc: tuple[Any, ...], kind: str
) -> None:
    if isinstance(options.get("alpha"), list):
        options = {**options, "alpha": np.array(options["alpha"])}
    with pytest.raises(InvalidInputError) as caught:
        focal_loss(np.array(logits), np.array(target), **options)
    assert [(issue.loc, issue.kind) for issue in caught.value.issues] == [(loc, kind)]

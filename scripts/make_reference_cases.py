"""Compute reference cases with PyTorch for what the golden file does not cover.

    pip install -e '.[bench]'          # torch==2.13.0, from this machine's disk
    python scripts/make_reference_cases.py            # rewrite tests/data/extra_cases.json
    python scripts/make_reference_cases.py --check    # fail if the files are not what torch gives now

Every expected value comes from PyTorch: ``F.cross_entropy`` and autograd for logits, ``F.nll_loss``
(or the documented formula written in torch ops where PyTorch has no mode, i.e. probabilities and
label smoothing on log-probabilities) for the other inputs. The service never imports torch; this
script and the benchmarks are the only places it runs. Add a case to the ``*_specs`` of its endpoint.

The metrics and sample weights (``tests/data/metric_cases.json``) are referenced to the libraries that
define them: scikit-learn 1.9 (``log_loss``, ``accuracy_score``, ``top_k_accuracy_score``,
``brier_score_loss``) and torchmetrics 1.9 (``MulticlassCalibrationError``, ``Perplexity``,
``BinaryAccuracy``), and PyTorch's autograd for the weighted gradient. torchmetrics computes its
results in float32, so its cases have float32's tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F  # noqa: N812
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("this script needs PyTorch: pip install -e '.[bench]'")

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "extra_cases.json"
METRIC_OUT = OUT.with_name("metric_cases.json")
TOLERANCES = {"float64": (1e-9, 1e-12), "float32": (1e-5, 1e-6)}
ALL_CE_OUTPUTS = ["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"]

Json = dict[str, Any]


def _rounded(array: Any) -> Any:
    return np.round(array, 6).tolist()


def _distributions(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray[Any, Any]:
    raw = rng.random(shape) + 0.05
    return raw / raw.sum(axis=axis, keepdims=True)


def _to_json(tensor: torch.Tensor) -> Any:
    value = tensor.detach().cpu().numpy()
    return value.item() if value.ndim == 0 else value.tolist()


def cross_entropy_reference(request: Json) -> tuple[Json, Json]:
    """(expected response fields, non-finite torch results) for a /v1/cross-entropy request."""
    kind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
    dtype = torch.float32 if request.get("dtype") == "float32" else torch.float64
    x = torch.tensor(request[kind], dtype=dtype, requires_grad=True)
    raw_target = request["target"] if "target" in request else request["labels"]
    soft = np.ndim(raw_target) == x.ndim
    target = torch.tensor(raw_target, dtype=dtype if soft else torch.int64)
    weight = torch.tensor(request["weight"], dtype=dtype) if "weight" in request else None
    ignore_index = request.get("ignore_index", -100)
    reduction = request.get("reduction", "mean")
    smoothing = request.get("label_smoothing", 0.0)
    epsilon = request.get("epsilon", float(np.finfo(np.float64).eps))
    outputs = request.get("outputs", ["losses", "softmax"])
    class_dim = 0 if x.ndim == 1 else 1
    classes = x.shape[class_dim]

    if kind == "logits":
        log_q = torch.log_softmax(x, class_dim)
        q = torch.softmax(x, class_dim)
    elif kind == "probabilities":
        log_q = torch.log(torch.clamp(x, epsilon, 1.0))
        q = x
    else:
        log_q = x
        q = torch.exp(x)

    def loss_of(red: str) -> torch.Tensor:
        if kind == "logits":
            options: Json = {"weight": weight, "reduction": red, "label_smoothing": smoothing}
            if not soft:
                options["ignore_index"] = ignore_index
            return F.cross_entropy(x, target, **options)
        if not soft and smoothing == 0:
            return F.nll_loss(log_q, target, weight=weight, ignore_index=ignore_index, reduction=red)
        # PyTorch has no probability input and nll_loss no smoothing: its formula, in torch ops.
        shape = [1] * x.ndim
        shape[class_dim] = classes
        w = (weight if weight is not None else torch.ones(classes, dtype=dtype)).reshape(shape)
        if soft:
            losses = -(w * ((1 - smoothing) * target + smoothing / classes) * log_q).sum(class_dim)
            denominator = torch.tensor(float(losses.numel()), dtype=dtype)
        else:
            keep = target != ignore_index
            safe = torch.where(keep, target, torch.zeros_like(target))
            picked = log_q.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
            target_weight = w.flatten()[safe] * keep
            smooth = -(w * log_q).sum(class_dim) * keep
            losses = (1 - smoothing) * target_weight * -picked + smoothing / classes * smooth
            denominator = target_weight.sum()
        if red == "none":
            return losses
        return losses.sum() if red == "sum" else losses.sum() / denominator

    loss = loss_of(reduction)
    (loss if reduction != "none" else loss.sum()).backward()
    assert x.grad is not None
    expected: Json = {}
    nonfinite: Json = {}
    if reduction == "none":
        expected["loss"] = None
    elif math.isfinite(loss.item()):
        expected["loss"] = loss.item()
    else:
        nonfinite["loss"] = "nan" if math.isnan(loss.item()) else "inf"
    undefined = "loss" in nonfinite

    keep = None if soft else (target != ignore_index)
    expected["count"] = int(keep.sum()) if keep is not None else int(target.numel() // classes)
    values: Json = {
        "losses": lambda: _to_json(loss_of("none")),
        "softmax": lambda: _to_json(q),
        "log_softmax": lambda: _to_json(log_q),
        # The contract: zeros where PyTorch's NaN case applies.
        "grad": lambda: _to_json(torch.zeros_like(x) if undefined else x.grad),
        "predictions": lambda: _to_json(torch.argmax(x, class_dim)),
    }
    for name in outputs:
        if name in values:
            expected[name] = values[name]()
    if "target_probability" in outputs and keep is not None:
        safe = torch.where(keep, target, torch.zeros_like(target))
        picked = q.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
        picked_list = np.where(keep.numpy(), picked.detach().numpy(), np.nan)
        expected["target_probability"] = _with_nulls(picked_list)
    return expected, nonfinite


def _with_nulls(array: np.ndarray[Any, Any]) -> Any:
    if array.ndim == 0:
        return None if np.isnan(array) else float(array)
    return [_with_nulls(item) for item in array]


def cross_entropy_specs() -> list[tuple[str, Json, str]]:
    rng = np.random.default_rng(20261125)
    logits = lambda *shape: _rounded(rng.normal(0, 2, shape))  # noqa: E731
    return [
        (
            "kdim_soft_weighted_smoothing",
            {
                "logits": logits(2, 3, 4),
                "target": _rounded(_distributions(rng, (2, 3, 4), 1)),
                "weight": [0.5, 2.0, 1.0],
                "label_smoothing": 0.1,
                "outputs": ["losses", "softmax", "log_softmax", "grad", "predictions"],
            },
            "K-dim soft targets: mean divides by N*d1 elements",
        ),
        (
            "kdim_probabilities_ignored_target_probability",
            {
                "probabilities": _rounded(_distributions(rng, (2, 3, 2), 1)),
                "target": [[0, -100], [2, 1]],
                "outputs": ALL_CE_OUTPUTS,
            },
            "target_probability is null at the ignored position",
        ),
        (
            "kdim_4d_sum",
            {
                "logits": logits(2, 3, 2, 2),
                "target": rng.integers(0, 3, (2, 2, 2)).tolist(),
                "reduction": "sum",
                "outputs": ALL_CE_OUTPUTS,
            },
            "(N, C, d1, d2)",
        ),
        (
            "unbatched_ignored_mean",
            {"logits": logits(4), "target": -100, "outputs": ["losses", "grad"]},
            "torch: NaN; contract: loss null, grad zeros",
        ),
        (
            "weights_sum_zero_mean",
            {
                "logits": logits(3, 3),
                "target": [0, 0, 0],
                "weight": [0.0, 1.0, 2.0],
                "outputs": ["losses", "grad"],
            },
            "targets' weights sum to 0: torch NaN; contract: loss null, grad zeros",
        ),
        (
            "weights_sum_zero_smoothing",
            {
                "logits": logits(2, 3),
                "target": [0, 0],
                "weight": [0.0, 1.0, 2.0],
                "label_smoothing": 0.2,
                "outputs": ["losses", "grad"],
            },
            "smoothing terms are non-zero but the mean's denominator is 0",
        ),
        (
            "weights_sum_zero_sum_reduction",
            {
                "logits": logits(2, 3),
                "target": [0, 0],
                "weight": [0.0, 1.0, 2.0],
                "label_smoothing": 0.2,
                "reduction": "sum",
                "outputs": ["losses", "grad"],
            },
            "'sum' is defined where 'mean' is not",
        ),
        (
            "label_smoothing_one",
            {
                "logits": logits(3, 4),
                "target": [3, 0, 1],
                "label_smoothing": 1.0,
                "outputs": ["losses", "grad"],
            },
            "s = 1: the uniform distribution",
        ),
        (
            "log_probabilities_soft_smoothing",
            {
                "log_probabilities": _rounded(np.log(_distributions(rng, (3, 4), 1))),
                "target": _rounded(_distributions(rng, (3, 4), 1)),
                "label_smoothing": 0.1,
                "weight": [1.0, 0.5, 2.0, 1.0],
                "outputs": ["losses", "softmax", "grad"],
            },
            "log-probabilities with soft targets",
        ),
        (
            "log_probabilities_smoothing_ignored",
            {
                "log_probabilities": _rounded(np.log(_distributions(rng, (4, 3), 1))),
                "target": [2, -100, 0, 1],
                "label_smoothing": 0.3,
                "outputs": ["losses", "grad", "target_probability"],
            },
            "label smoothing on log-probabilities with an ignored target",
        ),
        (
            "float32_kdim_soft",
            {
                "logits": logits(2, 4, 3),
                "target": _rounded(_distributions(rng, (2, 4, 3), 1)),
                "dtype": "float32",
                "outputs": ["losses", "softmax", "grad"],
            },
            "float32 K-dim",
        ),
        (
            "float32_probabilities_clipped",
            {
                "probabilities": [[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]],
                "target": [0, 2],
                "dtype": "float32",
                "reduction": "none",
                "outputs": ["losses", "grad"],
            },
            "p = 0 at the target: clipped to epsilon, gradient 0 outside the clip",
        ),
        (
            "probabilities_custom_epsilon",
            {
                "probabilities": [[0.0, 0.4, 0.6], [0.001, 0.999, 0.0]],
                "target": [0, 0],
                "epsilon": 0.01,
                "outputs": ["losses", "log_softmax", "grad"],
            },
            "epsilon 0.01 clips 0.001 and 0",
        ),
        (
            "unbatched_probabilities_weighted",
            {
                "probabilities": [0.2, 0.5, 0.3],
                "target": 1,
                "weight": [1.0, 3.0, 1.0],
                "outputs": ALL_CE_OUTPUTS,
            },
            "unbatched 'mean' with weight: w[t] cancels",
        ),
        (
            "ties_predict_first",
            {
                "logits": [[1.0, 3.0, 3.0], [0.0, 0.0, 0.0]],
                "target": [2, 1],
                "outputs": ["losses", "predictions", "target_probability"],
            },
            "argmax ties -> first index",
        ),
        (
            "float32_extreme_logits",
            {
                "logits": [[1e30, -1e30, 0.0], [-3e37, 3e37, 1.0]],
                "target": [0, 2],
                "dtype": "float32",
                "reduction": "none",
                "outputs": ["losses", "softmax", "log_softmax", "grad"],
            },
            "float32 log-sum-exp with a spread of 6e37",
        ),
        (
            "batch_32x20_weighted_smoothing_ignored",
            {
                "logits": logits(32, 20),
                "target": [int(v) if v % 7 else -100 for v in rng.integers(0, 20, 32)],
                "weight": _rounded(rng.random(20) * 2),
                "label_smoothing": 0.05,
                "outputs": ALL_CE_OUTPUTS,
            },
            "a larger batch with every option",
        ),
        (
            "labels_alias_soft_sum",
            {
                "logits": logits(2, 3),
                "labels": [[1, 0, 0], [0, 0, 1]],
                "reduction": "sum",
                "outputs": ["losses", "grad"],
            },
            "one-hot targets written as JSON integers are class probabilities",
        ),
    ]


def binary_cross_entropy_reference(request: Json) -> tuple[Json, Json]:
    """Expected /v1/binary-cross-entropy fields: BCEWithLogitsLoss, or BCELoss on clipped probabilities."""
    kind = "logits" if "logits" in request else "probabilities"
    dtype = torch.float32 if request.get("dtype") == "float32" else torch.float64
    x = torch.tensor(request[kind], dtype=dtype, requires_grad=True)
    y = torch.tensor(request["target"] if "target" in request else request["labels"], dtype=dtype)
    smoothing = request.get("label_smoothing", 0.0)
    y = y * (1 - smoothing) + 0.5 * smoothing  # Keras's label smoothing; torch has none for BCE
    weight = torch.tensor(request["weight"], dtype=dtype) if "weight" in request else None
    reduction = request.get("reduction", "mean")
    outputs = request.get("outputs", ["losses", "sigmoid"])
    if kind == "logits":
        pos_weight = torch.tensor(request["pos_weight"], dtype=dtype) if "pos_weight" in request else None

        def loss_of(red: str) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(
                x, y, weight=weight, pos_weight=pos_weight, reduction=red
            )

        probability = torch.sigmoid(x)
    else:
        epsilon = request.get("epsilon", float(np.finfo(np.float64).eps))
        clipped = torch.clamp(x, epsilon, 1 - epsilon)

        def loss_of(red: str) -> torch.Tensor:
            return F.binary_cross_entropy(clipped, y, weight=weight, reduction=red)

        probability = clipped
    loss = loss_of(reduction)
    (loss if reduction != "none" else loss.sum()).backward()
    assert x.grad is not None
    expected: Json = {"loss": None if reduction == "none" else loss.item(), "count": x.numel()}
    values = {
        "losses": lambda: _to_json(loss_of("none")),
        "sigmoid": lambda: _to_json(probability),
        "grad": lambda: _to_json(x.grad),
        "predictions": lambda: _to_json((probability >= 0.5).long()),
    }
    for name in outputs:
        expected[name] = values[name]()
    return expected, {}


def softmax_reference(request: Json) -> tuple[Json, Json]:
    dtype = torch.float32 if request.get("dtype") == "float32" else torch.float64
    x = torch.tensor(request["logits"], dtype=dtype) / request.get("temperature", 1.0)
    dim = request.get("dim", 1 if x.ndim >= 2 else 0)
    return {
        "softmax": _to_json(torch.softmax(x, dim)),
        "log_softmax": _to_json(torch.log_softmax(x, dim)),
    }, {}


def divergence_reference(request: Json) -> tuple[Json, Json]:
    p = torch.tensor(request["p"], dtype=torch.float64)
    epsilon = request.get("epsilon", float(np.finfo(np.float64).eps))
    q = torch.clamp(torch.tensor(request["q"], dtype=torch.float64), epsilon, 1.0)
    scale = {"e": 1.0, "2": math.log(2.0), "10": math.log(10.0)}[request.get("base", "e")]
    per = {
        "cross_entropies": -torch.xlogy(p, q).sum(-1) / scale,
        "entropies": -torch.xlogy(p, p).sum(-1) / scale,
        "kl_divergences": (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / scale,
    }
    reduction = request.get("reduction", "mean")
    expected: Json = {}
    for reduced, name in (
        ("cross_entropy", "cross_entropies"),
        ("entropy", "entropies"),
        ("kl_divergence", "kl_divergences"),
    ):
        values = per[name]
        if reduction == "none":
            expected[reduced] = None
        else:
            expected[reduced] = (values.sum() if reduction == "sum" else values.sum() / values.numel()).item()
    expected.update({name: _to_json(values) for name, values in per.items()})
    return expected, {}


def binary_cross_entropy_specs() -> list[tuple[str, Json, str]]:
    rng = np.random.default_rng(11)
    logits = lambda *shape: _rounded(rng.normal(0, 2, shape))  # noqa: E731
    labels = lambda *shape: rng.integers(0, 2, shape).astype(float).tolist()  # noqa: E731
    every = ["losses", "sigmoid", "grad", "predictions"]
    return [
        (
            "bce_3d_weight_per_sample_pos_weight_sum",
            {
                "logits": logits(2, 2, 3),
                "target": labels(2, 2, 3),
                "weight": [[[1.0]], [[0.5]]],
                "pos_weight": [2.0, 1.0, 0.25],
                "reduction": "sum",
                "outputs": every,
            },
            "weight (2, 1, 1) per sample, pos_weight along the last dimension",
        ),
        (
            "bce_scalar",
            {"logits": 0.7, "target": 1.0, "outputs": every},
            "0-d input",
        ),
        (
            "bce_probabilities_float32_smoothing_weighted",
            {
                "probabilities": _rounded(rng.random((3, 2))),
                "target": labels(3, 2),
                "weight": [1.0, 3.0],
                "label_smoothing": 0.2,
                "dtype": "float32",
                "outputs": every,
            },
            "float32 BCELoss with Keras smoothing and a per-label weight",
        ),
        (
            "bce_probabilities_custom_epsilon_grad",
            {
                "probabilities": [0.0, 0.0005, 0.3, 0.9995, 1.0],
                "target": [1.0, 0.0, 1.0, 1.0, 0.0],
                "epsilon": 0.001,
                "reduction": "none",
                "outputs": ["losses", "sigmoid", "grad"],
            },
            "clip at 1e-3: gradient 0 outside the clip",
        ),
        (
            "bce_probabilities_grad_floor",
            {
                "probabilities": [1e-13, 0.99999999999999, 3e-13, 0.5],
                "target": [0.0, 1.0, 1.0, 0.0],
                "reduction": "none",
                "outputs": ["losses", "grad"],
            },
            "p (1 - p) under the backward's floor, float32(1e-12) = 9.99999996e-13",
        ),
        (
            "bce_extreme_logits_pos_weight",
            {
                "logits": [50.0, -50.0, 1e300, -1e300, 3.0],
                "target": [1.0, 0.0, 0.0, 1.0, 0.25],
                "pos_weight": [2.0],
                "reduction": "none",
                "outputs": ["losses", "sigmoid", "grad", "predictions"],
            },
            "softplus never exponentiates a positive number",
        ),
        (
            "bce_labels_alias_soft_mean",
            {
                "logits": logits(4),
                "labels": [0.1, 0.9, 0.5, 0.0],
                "outputs": ["losses", "grad"],
            },
            "soft labels, alias",
        ),
    ]


def softmax_specs() -> list[tuple[str, Json, str]]:
    rng = np.random.default_rng(12)
    logits = lambda *shape: _rounded(rng.normal(0, 2, shape))  # noqa: E731
    return [
        ("softmax_sharp_1d", {"logits": logits(6), "temperature": 0.05}, "T -> 0: nearly one-hot"),
        ("softmax_flat", {"logits": logits(2, 4), "temperature": 1000.0}, "T large: nearly uniform"),
        ("softmax_3d_default_dim", {"logits": logits(2, 3, 2)}, "default dim is 1 for ndim >= 2"),
        ("softmax_3d_dim_minus_1", {"logits": logits(2, 3, 2), "dim": -1}, "negative dim"),
        ("softmax_4d_dim0", {"logits": logits(3, 2, 2, 2), "dim": 0}, "dim 0 of a 4-D array"),
        ("softmax_float32", {"logits": logits(3, 5), "dtype": "float32"}, "float32"),
        (
            "softmax_extreme_logits",
            {"logits": [[1e300, -1e300, 0.0], [-1e300, -1e300, -1e300]]},
            "max-shift: no overflow, equal huge logits give uniform",
        ),
    ]


def divergence_specs() -> list[tuple[str, Json, str]]:
    rng = np.random.default_rng(13)
    return [
        (
            "divergence_q_zero_clipped",
            {
                "p": [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]],
                "q": [[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]],
                "epsilon": 1e-6,
            },
            "q = 0 where p > 0: clipped to epsilon, finite",
        ),
        (
            "divergence_sum_base_10",
            {
                "p": _rounded(_distributions(rng, (4, 5), 1)),
                "q": _rounded(_distributions(rng, (4, 5), 1)),
                "reduction": "sum",
                "base": "10",
            },
            "sum in base 10",
        ),
        (
            "divergence_identical",
            {"p": [[0.25, 0.25, 0.5]], "q": [[0.25, 0.25, 0.5]], "base": "2"},
            "p = q: KL = 0, H(p, q) = H(p) = 1.5 bits",
        ),
    ]


REFERENCES = {
    "/v1/cross-entropy": (cross_entropy_specs, cross_entropy_reference),
    "/v1/binary-cross-entropy": (binary_cross_entropy_specs, binary_cross_entropy_reference),
    "/v1/softmax": (softmax_specs, softmax_reference),
    "/v1/divergence": (divergence_specs, divergence_reference),
}


def build() -> Json:
    cases = []
    for endpoint, (specs, reference) in REFERENCES.items():
        for name, request, note in specs():
            expected, nonfinite = reference(request)
            rtol, atol = TOLERANCES[request.get("dtype", "float64")]
            case: Json = {
                "name": name,
                "endpoint": endpoint,
                "request": request,
                "expected": expected,
                "rtol": rtol,
                "atol": atol,
                "note": note,
            }
            if nonfinite:
                case["torch_nonfinite"] = nonfinite
            cases.append(case)
    return {"version": 1, "generated_with": f"torch {torch.__version__}", "cases": cases}


#: ``--check`` allows this share of a case's own tolerance: PyTorch's results differ in the last bits
#: between CPUs (an AVX-512 machine gave a softmax value 5.6e-17 away from an AVX2 one), while a stale file,
#: a changed request or a changed formula moves a value by far more.
CHECK_TOLERANCE_SHARE = 0.01


def _differences(stored: Any, fresh: Any, where: str, rtol: float, atol: float) -> list[str]:
    """Where two JSON values differ: numbers within (rtol, atol), everything else exactly."""
    numbers = (int, float)
    if isinstance(stored, numbers) and isinstance(fresh, numbers) and not isinstance(stored, bool):
        if isinstance(stored, int) and isinstance(fresh, int):
            return [] if stored == fresh else [f"{where}: {stored} in the file, {fresh} now"]
        if math.isclose(stored, fresh, rel_tol=rtol, abs_tol=atol):
            return []
        return [f"{where}: {stored!r} in the file, {fresh!r} now (difference {abs(stored - fresh):.3g})"]
    if isinstance(stored, list) and isinstance(fresh, list) and len(stored) == len(fresh):
        return [
            found
            for index, (a, b) in enumerate(zip(stored, fresh, strict=True))
            for found in _differences(a, b, f"{where}[{index}]", rtol, atol)
        ]
    if isinstance(stored, dict) and isinstance(fresh, dict) and stored.keys() == fresh.keys():
        return [
            found
            for key in stored
            for found in _differences(stored[key], fresh[key], f"{where}.{key}", rtol, atol)
        ]
    return [] if stored == fresh else [f"{where}: {stored!r:.80} in the file, {fresh!r:.80} now"]


def compare(stored: Json, fresh: Json) -> list[str]:
    """Every value of the stored file that is not what ``build()`` gives now, named by case and path.

    Requests, names, notes and tolerances must be equal; expected numbers must agree within
    ``CHECK_TOLERANCE_SHARE`` of the case's own tolerance."""
    if [case["name"] for case in stored["cases"]] != [case["name"] for case in fresh["cases"]]:
        return ["the list of cases differs: run the script without --check"]
    found = []
    for old, new in zip(stored["cases"], fresh["cases"], strict=True):
        rtol, atol = (CHECK_TOLERANCE_SHARE * tolerance for tolerance in (new["rtol"], new["atol"]))
        rest = [key for key in new if key != "expected"]
        found += _differences({k: old.get(k) for k in rest}, {k: new[k] for k in rest}, old["name"], 0.0, 0.0)
        found += _differences(old["expected"], new["expected"], f"{old['name']}.expected", rtol, atol)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    from metric_references import build_metric_cases  # here: it needs scikit-learn and torchmetrics

    for path, built in ((OUT, build()), (METRIC_OUT, build_metric_cases())):
        if args.check:
            differences = compare(json.loads(path.read_text()), built)
            if differences:
                listed = "\n".join(differences[:20])
                sys.exit(f"{path} differs from what the references compute now:\n{listed}")
            share = CHECK_TOLERANCE_SHARE
            print(f"{path} is what the references compute now, within {share} of each case's tolerance")
            continue
        path.write_text(json.dumps(built, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

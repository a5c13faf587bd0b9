"""Differential fuzzing against PyTorch over HTTP: random valid requests to a real ``python -m service``.

Every request goes to /v1, and again to /v2 in JSON and with binary tensors. /v1's answer must be
PyTorch's within the reference tolerances (the expected values come from the same functions that
write ``tests/data/extra_cases.json``, in ``scripts/make_reference_cases.py``), and both /v2 answers
must be /v1's to the last bit. The service process must never die: a dropped connection fails the
test, and so does a server that is not up and ready at the end.

The requests cover every endpoint and option family: magnitudes up to +-1e300 in float64 (+-1e30 in
float32, whose own limit is 3.4e38), subnormals, exact zeros, ties, exact 0 and 1 probabilities,
float32 and float64, every output, unbatched and K-dimensional inputs, and sizes on both sides of the
small-input path (64 numbers) and of the large-body parser (64 KiB spans). Seeds are fixed: a failure
names the seed and the request, and ``FUZZ_CASES``/``FUZZ_SEED`` make another run.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.live import LiveServer, start_server, stop_server
from tests.reference import assert_matches
from tests.v2_cases import binary_body, json_body, v2_request

Json = dict[str, Any]
Rng = np.random.Generator

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_reference_cases.py"
CASES = int(os.environ.get("FUZZ_CASES", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}

CE_OUTPUTS = ["losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"]
BCE_OUTPUTS = ["losses", "sigmoid", "grad", "predictions"]


def _reference_module() -> ModuleType:
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("PYTORCH NOT INSTALLED: the differential fuzz test needs torch==2.13.0 (the bench extra)")
    spec = importlib.util.spec_from_file_location("make_reference_cases", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- random requests ------------------------------------------------------------------------------


def _size(rng: Rng) -> tuple[int, int]:
    """(rows, classes): mostly around the small-input path, some past the large-body parser."""
    regime = rng.choice(["small", "medium", "large"], p=[0.6, 0.385, 0.015])
    if regime == "small":
        classes = int(rng.integers(1, 9))
        return int(rng.integers(1, max(2, 64 // classes + 2))), classes
    if regime == "medium":
        return int(rng.integers(2, 60)), int(rng.integers(2, 40))
    # Bodies of about 0.4-1.5 MB: the bulk parser reads their arrays in 64 KiB+ spans.
    return int(rng.integers(900, 2600)), int(rng.choice([10, 33, 100]))


def _scores(rng: Rng, shape: tuple[int, ...], dtype: str) -> np.ndarray[Any, Any]:
    """Real numbers of one magnitude, with ties, zeros and (float64) subnormals mixed in."""
    top = 1e30 if dtype == "float32" else 1e300
    scale = float(rng.choice([1.0, 10.0, 1e3, 1e15, top, 1e-300 if dtype == "float64" else 1e-30]))
    values = rng.normal(0, 1, shape) * scale
    if rng.random() < 0.3:  # ties: a few distinct values only
        values = rng.choice(values.reshape(-1)[:3], shape)
    mask = rng.random(shape)
    values = np.where(mask < 0.05, 0.0, values)
    if dtype == "float64":
        values = np.where(mask > 0.97, rng.choice([5e-324, -5e-324, 2.2e-310]), values)
    if rng.random() < 0.1:
        values = np.where(mask < 0.5, scale, -scale)
    result: np.ndarray[Any, Any] = values
    return result


def _distributions(rng: Rng, shape: tuple[int, ...], axis: int) -> np.ndarray[Any, Any]:
    """Rows summing to 1; some one-hot (exact 0 and 1), some with zeros."""
    raw = rng.random(shape) ** float(rng.choice([1.0, 4.0, 30.0]))
    raw = np.where(rng.random(shape) < 0.2, 0.0, raw)
    if rng.random() < 0.25:
        raw = np.zeros(shape)
        index = rng.integers(0, shape[axis], [*shape[:axis], 1, *shape[axis + 1 :]])
        np.put_along_axis(raw, index, 1.0, axis)
    total = raw.sum(axis=axis, keepdims=True)
    raw = np.where(total == 0, 1.0, raw)
    result: np.ndarray[Any, Any] = raw / raw.sum(axis=axis, keepdims=True)
    return result


def _outputs(rng: Rng, names: list[str]) -> list[str] | None:
    if rng.random() < 0.2:
        return None  # the defaults
    chosen = [name for name in names if rng.random() < 0.6]
    return chosen or [names[0]]


def _common(rng: Rng, request: Json, outputs: list[str]) -> Json:
    dtype = "float32" if rng.random() < 0.3 else "float64"
    request["reduction"] = str(rng.choice(["mean", "sum", "none"]))
    if dtype == "float32":
        request["dtype"] = dtype
    chosen = _outputs(rng, outputs)
    if chosen is not None:
        request["outputs"] = chosen
    return request


def cross_entropy_request(rng: Rng) -> Json:
    rows, classes = _size(rng)
    request = _common(rng, {}, CE_OUTPUTS)
    dtype = request.get("dtype", "float64")
    layout = rng.choice(["batch", "unbatched", "kdim"], p=[0.75, 0.1, 0.15])
    shape: tuple[int, ...] = {"batch": (rows, classes), "unbatched": (classes,), "kdim": (2, classes, 3)}[
        layout
    ]
    axis = 0 if layout == "unbatched" else 1
    kind = rng.choice(["logits", "probabilities", "log_probabilities"], p=[0.6, 0.25, 0.15])
    soft = kind != "log_probabilities" and rng.random() < 0.25
    if kind == "logits":
        request["logits"] = _scores(rng, shape, dtype).tolist()
    elif kind == "probabilities":
        request["probabilities"] = _distributions(rng, shape, axis).tolist()
    else:
        request["log_probabilities"] = np.log(_distributions(rng, shape, axis).clip(1e-12, 1)).tolist()
    if soft:
        request["target"] = _distributions(rng, shape, axis).tolist()
    else:
        target_shape = shape[:axis] + shape[axis + 1 :]
        target = rng.integers(0, classes, target_shape)
        ignore = int(rng.choice([-100, 0, classes - 1])) if rng.random() < 0.4 else None
        if ignore is not None:
            target = np.where(rng.random(target_shape) < 0.3, ignore, target)
            if ignore != -100 or rng.random() < 0.5:
                request["ignore_index"] = ignore
        request["target" if rng.random() < 0.8 else "labels"] = (
            target.tolist() if target.ndim else int(target)
        )
    if rng.random() < 0.3:
        request["weight"] = np.where(rng.random(classes) < 0.15, 0.0, rng.random(classes) * 3).tolist()
    if rng.random() < 0.3:
        request["label_smoothing"] = float(rng.choice([0.0, 0.1, 0.5, 1.0]))
    if kind == "probabilities" and rng.random() < 0.3:
        request["epsilon"] = float(rng.choice([1e-7, 1e-3]))
    return request


def binary_cross_entropy_request(rng: Rng) -> Json:
    rows, labels = _size(rng)
    request = _common(rng, {}, BCE_OUTPUTS)
    dtype = request.get("dtype", "float64")
    shape = (rows,) if rng.random() < 0.4 else (rows, labels)
    if rng.random() < 0.65:
        request["logits"] = _scores(rng, shape, dtype).tolist()
        if rng.random() < 0.3:
            request["pos_weight"] = (rng.random(shape[-1]) * 3).tolist()
    else:
        p = rng.random(shape)
        p = np.where(rng.random(shape) < 0.1, 0.0, np.where(rng.random(shape) < 0.1, 1.0, p))
        request["probabilities"] = p.tolist()
        if rng.random() < 0.3:
            request["epsilon"] = float(rng.choice([1e-12, 1e-3]))
    target = rng.integers(0, 2, shape).astype(float)
    if rng.random() < 0.3:
        target = rng.random(shape)
    request["target" if rng.random() < 0.8 else "labels"] = target.tolist()
    if rng.random() < 0.3:
        weight_shape = (shape[0], 1) if len(shape) == 2 and rng.random() < 0.5 else shape[-1:]
        request["weight"] = (rng.random(weight_shape) * 2).tolist()
    if rng.random() < 0.3:
        request["label_smoothing"] = float(rng.choice([0.1, 0.5, 1.0]))
    return request


def softmax_request(rng: Rng) -> Json:
    rows, classes = _size(rng)
    request: Json = {}
    if rng.random() < 0.3:
        request["dtype"] = "float32"
    shape = [(classes,), (rows, classes), (2, classes, 3)][int(rng.integers(0, 3))]
    logits = _scores(rng, shape, request.get("dtype", "float64"))
    if rng.random() < 0.4:
        # A temperature that keeps logits / T finite: the service refuses an overflowing quotient.
        largest = float(np.abs(logits).max()) or 1.0
        limit = 1e38 if request.get("dtype") == "float32" else 1e307
        request["temperature"] = float(max(rng.choice([0.05, 0.5, 2.0, 1000.0]), largest / limit))
    request["logits"] = logits.tolist()
    if rng.random() < 0.3:
        request["dim"] = int(rng.integers(-len(shape), len(shape)))
    return request


def divergence_request(rng: Rng) -> Json:
    rows, classes = _size(rng)
    shape = (classes,) if rng.random() < 0.2 else (rows, classes)
    request: Json = {
        "p": _distributions(rng, shape, len(shape) - 1).tolist(),
        "q": _distributions(rng, shape, len(shape) - 1).tolist(),
        "reduction": str(rng.choice(["mean", "sum", "none"])),
        "base": str(rng.choice(["e", "2", "10"])),
    }
    if rng.random() < 0.3:
        request["epsilon"] = float(rng.choice([1e-12, 1e-6]))
    return request


GENERATORS: dict[str, Callable[[Rng], Json]] = {
    "/v1/cross-entropy": cross_entropy_request,
    "/v1/binary-cross-entropy": binary_cross_entropy_request,
    "/v1/softmax": softmax_request,
    "/v1/divergence": divergence_request,
}


# --- the run --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("fuzz"))
    yield server
    assert stop_server(server) == 0, server.output()[-3000:]


def _v2_outputs(response: httpx.Response) -> dict[str, np.ndarray[Any, Any]]:
    assert response.status_code == 200, response.text[:500]
    length = response.headers.get("inference-header-content-length")
    result = triton.InferenceServerClient.parse_response_body(
        response.content, header_length=None if length is None else int(length)
    )
    return {output["name"]: result.as_numpy(output["name"]) for output in result.get_response()["outputs"]}


def _as_v2(value: Any, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """A /v1 JSON value as /v2 sends it: null (an ignored target's probability) is -1."""
    objects = np.array(value, dtype=object)
    missing = np.vectorize(lambda item: item is None, otypes=[bool])(objects)
    return np.where(missing, -1, objects).astype(dtype)


def _check_one(client: httpx.Client, reference: ModuleType, endpoint: str, request: Json) -> None:
    expected, nonfinite = reference.REFERENCES[endpoint][1](request)
    rtol, atol = reference.TOLERANCES[request.get("dtype", "float64")]
    case: Json = {"name": endpoint, "endpoint": endpoint, "request": request, "expected": expected}
    case.update(rtol=rtol, atol=atol, torch_nonfinite=nonfinite)

    v1 = client.post(endpoint, json=request)
    assert v1.status_code == 200, v1.text[:500]
    v1_body: Json = v1.json()
    assert_matches(case, v1_body)

    translated = v2_request(case)
    path = f"/v2/models/{translated.model}/infer"
    body, header_length = binary_body(translated)
    answers = {
        "v2 JSON": _v2_outputs(client.post(path, json=json_body(translated))),
        "v2 binary": _v2_outputs(
            client.post(path, content=body, headers={"Inference-Header-Content-Length": str(header_length)})
        ),
    }
    for protocol, outputs in answers.items():
        for name in translated.outputs:
            # A null loss and an output v1 does not send (target_probability of soft targets) are absent
            # from v2; an ignored target's probability, null in v1, is -1 in v2, unbatched too.
            if (v1_body.get(name) is None and name != "target_probability") or name not in v1_body:
                assert name not in outputs, f"{protocol}: {name} is null or absent in v1 and must be absent"
                continue
            got = outputs[name]
            np.testing.assert_array_equal(
                got, _as_v2(v1_body[name], got.dtype), err_msg=f"{protocol}: {name}"
            )


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 60-90 s on two idle cores; a loaded CI machine may take three times that
def test_random_requests_agree_with_pytorch_and_v2_agrees_with_v1(server: LiveServer) -> None:
    reference = _reference_module()
    endpoints = list(GENERATORS)
    failures: list[str] = []
    seen: dict[str, int] = dict.fromkeys(endpoints, 0)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for index in range(CASES):
            rng = np.random.default_rng([SEED, index])
            endpoint = endpoints[index % len(endpoints)]
            request = GENERATORS[endpoint](rng)
            try:
                _check_one(client, reference, endpoint, request)
            except AssertionError as error:
                failures.append(f"seed [{SEED}, {index}] {endpoint} {str(request)[:300]}: {str(error)[:600]}")
            except httpx.TransportError as error:  # the process died or dropped the connection
                pytest.fail(f"seed [{SEED}, {index}] {endpoint}: {error!r}\n{server.output()[-3000:]}")
            seen[endpoint] += 1
        assert server.process.poll() is None, server.output()[-3000:]
        assert client.get("/health/ready").status_code == 200
    assert not failures, f"{len(failures)} of {CASES} cases differ:\n" + "\n".join(failures[:10])
    assert min(seen.values()) >= CASES // len(endpoints)

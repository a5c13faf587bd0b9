"""Bad requests get a clear 422 problem+json naming the field, the position and the problem."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from service.api import json_request

pytestmark = pytest.mark.anyio

L = [[-1, 0.5, 2], [-1, 0.5, 3]]  # the seed's logits: N = 2, C = 3
P = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]


def body(**fields: Any) -> dict[str, Any]:
    return {"logits": L, "target": [1, 2], **fields}


# (id, request body (a dict, or raw bytes), location of the first error or None, message fragment)
# fmt: off
CROSS_ENTROPY: list[tuple[str, Any, list[Any] | None, str]] = [
    ("target-out-of-range", body(target=[1, 7]), ["target", 1], "target[1] = 7 is out of range for 3 classes"),
    ("target-negative", body(target=[-1, 0]), ["target", 0], "target[0] = -1 is out of range for 3 classes"),
    ("target-bool", body(target=[True, 1]), ["target", 0], "target[0] = true is a boolean, not a number"),
    ("target-fraction", body(target=[1.5, 0]), ["target", 0], "target[0] = 1.5 is not a class index"),
    ("target-float-literal", body(target=[1.0, 0.0]), ["target"], "class indices are JSON integers"),
    ("target-string", body(target=["2", 1]), ["target", 0], "target[0] = '2' is a string"),
    ("target-huge-int", b'{"logits": [[1, 2]], "target": [100000000000000000000000000000]}', ["target", 0], "target[0] = 100000000000000000000000000000 is outside the 64-bit integer range"),
    ("target-object", body(target=[{"class": 1}, 1]), ["target", 0], "target[0] = an object is not a number"),
    ("target-missing", {"logits": L}, ["target"], "target: field required"),
    ("target-batch-mismatch", body(target=[1]), ["target"], "target has shape (1,) but logits of shape (2, 3) needs class indices of shape (2,)"),
    ("target-kdim-mismatch", {"logits": [[[0.0] * 4] * 3] * 2, "target": [[0] * 5] * 2}, ["target"], "needs class indices of shape (2, 4)"),
    ("target-and-labels", body(labels=[1, 2]), ["labels"], "either `target` or its alias `labels`, not both"),
    ("logits-string", body(logits=[[-1, "0.5", 2], [-1, 0.5, 3]]), ["logits", 0, 1], "logits[0][1] = '0.5' is a string"),
    ("logits-bool", body(logits=[[-1, 0.5, 2], [-1, False, 3]]), ["logits", 1, 1], "logits[1][1] = false is a boolean"),
    ("logits-null", body(logits=[[-1, None, 2], [-1, 0.5, 3]]), ["logits", 0, 1], "logits[0][1] is null, not a number"),
    ("logits-nan", b'{"logits": [[-1, NaN, 2], [-1, 0.5, 3]], "target": [1, 2]}', ["logits", 0, 1], "logits[0][1] = NaN is not a finite number"),
    ("logits-infinity", b'{"logits": [[-1, 0.5, 2], [-1, 0.5, Infinity]], "target": [1, 2]}', ["logits", 1, 2], "logits[1][2] = Infinity is not a finite number"),
    ("logits-minus-infinity", b'{"logits": [[-Infinity, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}', ["logits", 0, 0], "logits[0][0] = -Infinity is not a finite number"),
    ("logits-overflowing-literal", b'{"logits": [[-1, 0.5, 1e400], [-1, 0.5, 3]], "target": [1, 2]}', ["logits", 0, 2], "logits[0][2] = Infinity is not a finite number (numbers beyond +-1.8e308, such as 1e400, read as Infinity)"),
    ("logits-ragged", body(logits=[[-1, 0.5, 2], [-1, 0.5]]), ["logits", 1], "logits[1] has 2 elements but logits[0] has 3"),
    ("logits-mixed-depth", body(logits=[[-1, 0.5, 2], 3]), ["logits", 1], "logits[1] is 3 where an array is expected"),
    ("logits-scalar", body(logits=1.5), ["logits"], "logits must be an array"),
    ("logits-empty", body(logits=[], target=[]), ["logits"], "every dimension needs at least one element"),
    ("logits-empty-row", body(logits=[[]], target=[0]), ["logits"], "every dimension needs at least one element"),
    ("logits-too-deep", body(logits=[[[[[[[[[1.0]]]]]]]]]), ["logits"], "logits has 9 dimensions; at most 8"),
    ("logits-too-many", body(logits=[[0.0] * 1000] * 101, target=[0] * 101), ["logits"], "at most 100000 are accepted"),
    ("logits-spread-overflow", body(logits=[[1.7e308, -1.7e308, 0], [-1, 0.5, 3]]), ["logits", 0, ":"], "logits[0][:]: the spread max - min of these logits overflows"),
    ("logits-float32-range", body(logits=[[-1, 0.5, 1e39], [-1, 0.5, 3]], dtype="float32"), ["logits", 0, 2], "is outside the float32 range"),
    ("loss-overflows", body(logits=[[0.0, -1.5e308, 0.0], [0.0, -1.5e308, 0.0]], target=[1, 1], reduction="sum"), ["logits"], "the loss of these logits is not representable in float64"),
    ("no-input", {"target": [1, 2]}, [], "exactly one of logits, probabilities, log_probabilities is required (found: none)"),
    ("two-inputs", body(probabilities=P), [], "(found: logits, probabilities)"),
    ("unknown-field", body(temperature=2), ["temperature"], "temperature: unknown field"),
    ("reduction-unknown", body(reduction="avg"), ["reduction"], "reduction: Input should be 'mean', 'sum' or 'none'"),
    ("label-smoothing-above-1", body(label_smoothing=1.5), ["label_smoothing"], "label_smoothing = 1.5 is outside [0, 1]"),
    ("label-smoothing-negative", body(label_smoothing=-0.1), ["label_smoothing"], "label_smoothing = -0.1 is outside [0, 1]"),
    ("label-smoothing-string", body(label_smoothing="0.1"), ["label_smoothing"], "label_smoothing: must be a number"),
    ("logits-nested-250-deep", b'{"logits": ' + b"[" * 250 + b"1" + b"]" * 250 + b', "target": [1, 2]}', [], "recursion limit exceeded"),
    ("ignore-index-below-int64", b'{"logits": [[1, 2]], "target": [0], "ignore_index": -9223372036854775809}', ["ignore_index"], "ignore_index = -9223372036854775809 is outside the 64-bit integer range"),
    ("ignore-index-above-uint64", b'{"logits": [[1, 2]], "target": [0], "ignore_index": 18446744073709551616}', ["ignore_index"], "ignore_index = 18446744073709551616 is outside the 64-bit integer range"),
    ("label-smoothing-nan", b'{"logits": [[1, 2]], "target": [0], "label_smoothing": NaN}', ["label_smoothing"], "finite number"),
    ("epsilon-zero", body(epsilon=0), ["epsilon"], "epsilon = 0.0 is outside the open interval (0, 0.5)"),
    ("epsilon-half", body(epsilon=0.5), ["epsilon"], "epsilon = 0.5 is outside the open interval (0, 0.5)"),
    ("epsilon-below-float32", {"probabilities": [[0, 1]], "target": [1], "dtype": "float32", "epsilon": 1e-46, "outputs": ["log_softmax"]}, ["epsilon"], "is below the smallest normal float32 number"),
    ("dtype-unknown", body(dtype="float16"), ["dtype"], "dtype: Input should be 'float64' or 'float32'"),
    ("outputs-unknown", body(outputs=["losses", "loss"]), ["outputs", 1], "outputs[1]: Input should be"),
    ("outputs-string", body(outputs="losses"), ["outputs"], "outputs: must be an array"),
    ("ignore-index-bool", body(ignore_index=True), ["ignore_index"], "ignore_index: must be an integer"),
    ("ignore-index-float", body(ignore_index=1.5), ["ignore_index"], "ignore_index: must be an integer"),
    ("ignore-index-with-soft-targets", body(target=P, ignore_index=-100), ["ignore_index"], "ignore_index applies to class-index targets only"),
    ("weight-length", body(weight=[1, 2]), ["weight"], "weight has shape (2,); it needs one weight per class: (3,)"),
    ("weight-scalar", body(weight=2.0), ["weight"], "weight has shape ()"),
    ("weight-negative", body(weight=[1, -1, 1]), ["weight", 1], "weight[1] = -1.0 is negative"),
    ("weight-nan", b'{"logits": [[1, 2]], "target": [0], "weight": [1, NaN]}', ["weight", 1], "weight[1] = NaN is not a finite number"),
    ("soft-target-shape", body(target=[[0.5, 0.5], [0.5, 0.5]]), ["target"], "target has shape (2, 2) but logits of shape (2, 3) needs class indices of shape (2,) or class probabilities of shape (2, 3)"),
    ("soft-target-sum", body(target=[[0.5, 0.2, 0.1], [0, 0, 1]]), ["target", 0, ":"], "target[0][:] is not a probability distribution: sums to 0.8, not 1"),
    ("soft-target-negative", body(target=[[1.5, -0.5, 0], [0, 0, 1]]), ["target", 0, 0], "target[0][0] = 1.5 is outside [0, 1]"),
    ("probabilities-above-1", {"probabilities": [[1.2, -0.2, 0]], "target": [0]}, ["probabilities", 0, 0], "probabilities[0][0] = 1.2 is outside [0, 1]"),
    ("probabilities-sum", {"probabilities": [[0.2, 0.3, 0.4]], "target": [0]}, ["probabilities", 0, ":"], "probabilities[0][:] is not a probability distribution: sums to 0.9"),
    ("log-probabilities-positive", {"log_probabilities": [[0.1, -2.0]], "target": [0]}, ["log_probabilities", 0, 0], "is positive: a log-probability is <= 0"),
    ("log-probabilities-unnormalised", {"log_probabilities": [[-1.0, -1.0]], "target": [0]}, ["log_probabilities", 0, ":"], "exp() of it sums to"),
    ("not-json", b"logits=1&target=2", [], "the body is not valid JSON"),
    ("empty-body", b"", [], "the body is not valid JSON"),
    ("json-array-body", b"[1, 2, 3]", [], "must be a JSON object"),
    ("invalid-utf8", b'{"logits": [[1, 2]], "target": [0], "dtype": "\xff"}', [], "the body is not valid JSON"),
]

X = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.3]]
Y = [[1, 0, 1], [0, 0, 1]]


def bce(**fields: Any) -> dict[str, Any]:
    return {"logits": X, "target": Y, **fields}


BINARY_CROSS_ENTROPY: list[tuple[str, Any, list[Any] | None, str]] = [
    ("shape-mismatch", bce(target=[[1, 0], [0, 1]]), ["target"], "target has shape (2, 2) but logits has shape (2, 3)"),
    ("target-above-1", bce(target=[[1, 0, 2], [0, 0, 1]]), ["target", 0, 2], "target[0][2] = 2.0 is outside [0, 1]"),
    ("target-negative", bce(target=[[1, 0, 1], [0, -0.5, 1]]), ["target", 1, 1], "target[1][1] = -0.5 is outside [0, 1]"),
    ("target-bool", bce(target=[[True, 0, 1], [0, 0, 1]]), ["target", 0, 0], "target[0][0] = true is a boolean"),
    ("pos-weight-with-probabilities", {"probabilities": [[0.5, 0.5, 0.2]], "target": [[1, 0, 1]], "pos_weight": [1, 2, 3]}, ["pos_weight"], "pos_weight applies to logits only"),
    ("pos-weight-wrong-length", bce(pos_weight=[1, 2]), ["pos_weight"], "pos_weight of shape (2,) does not broadcast along the last dimension"),
    ("pos-weight-not-last-dim", bce(pos_weight=[[1], [2]]), ["pos_weight"], "pos_weight of shape (2, 1) does not broadcast along the last dimension"),
    ("pos-weight-negative", bce(pos_weight=[1, -2, 1]), ["pos_weight", 1], "pos_weight[1] = -2.0 is negative"),
    ("weight-does-not-broadcast", bce(weight=[1, 2]), ["weight"], "weight of shape (2,) does not broadcast to the input's shape (2, 3)"),
    ("weight-too-big", bce(weight=[[[1, 1, 1]], [[1, 1, 1]]]), ["weight"], "does not broadcast to the input's shape"),
    ("probabilities-outside", {"probabilities": [0.5, 1.5], "target": [1, 0]}, ["probabilities", 1], "probabilities[1] = 1.5 is outside [0, 1]"),
    ("logits-nan", b'{"logits": [0.5, NaN], "target": [1, 0]}', ["logits", 1], "logits[1] = NaN is not a finite number"),
    ("both-inputs", bce(probabilities=[[0.5, 0.5, 0.5]] * 2), [], "exactly one of logits, probabilities is required"),
    ("log-probabilities-unknown", {"log_probabilities": [-0.5], "target": [1]}, ["log_probabilities"], "unknown field"),
    ("ignore-index-unknown", bce(ignore_index=-100), ["ignore_index"], "unknown field"),
    ("outputs-softmax", bce(outputs=["softmax"]), ["outputs", 0], "Input should be 'losses', 'sigmoid', 'grad', 'predictions', 'accuracy' or 'brier_score'"),
    ("empty", {"logits": [], "target": []}, ["logits"], "every dimension needs at least one element"),
    ("loss-overflows", {"logits": [-1e308, -1e308], "target": [1, 1], "reduction": "sum"}, ["logits"], "the loss of these logits is not representable"),
]

SOFTMAX: list[tuple[str, Any, list[Any] | None, str]] = [
    ("temperature-zero", {"logits": [1, 2], "temperature": 0}, ["temperature"], "temperature = 0.0 must be a positive finite number"),
    ("temperature-negative", {"logits": [1, 2], "temperature": -1}, ["temperature"], "temperature = -1.0 must be a positive finite number"),
    ("temperature-infinite", b'{"logits": [1, 2], "temperature": Infinity}', ["temperature"], "finite number"),
    ("temperature-overflow", {"logits": [1e300, -1e300], "temperature": 1e-10}, ["temperature"], "logits / temperature overflows float64"),
    ("temperature-overflow-same-sign", {"logits": [1e300, 1e300], "temperature": 1e-10}, ["temperature"], "logits / temperature overflows float64"),
    ("dim-out-of-range", {"logits": [[1, 2]], "dim": 2}, ["dim"], "dim = 2 is out of range for logits with 2 dimension(s) (valid: -2 to 1)"),
    ("dim-negative-out-of-range", {"logits": [1, 2], "dim": -2}, ["dim"], "dim = -2 is out of range"),
    ("dim-float", {"logits": [1, 2], "dim": 0.0}, ["dim"], "dim: must be an integer"),
    ("dim-bool", {"logits": [1, 2], "dim": False}, ["dim"], "dim: must be an integer"),
    ("logits-scalar", {"logits": 3.0}, ["logits"], "an array with at least one element per dimension is needed"),
    ("logits-missing", {"temperature": 2}, ["logits"], "logits: field required"),
    ("logits-string", {"logits": [1, "2"]}, ["logits", 1], "logits[1] = '2' is a string"),
    ("target-unknown", {"logits": [1, 2], "target": [0]}, ["target"], "unknown field"),
]

P = [[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]
Q = [[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]]

DIVERGENCE: list[tuple[str, Any, list[Any] | None, str]] = [
    ("shape-mismatch", {"p": P, "q": [[0.5, 0.5]]}, ["q"], "p has shape (2, 3) and q has shape (1, 2); they must be equal"),
    ("p-not-a-distribution", {"p": [[0.5, 0.25, 0.5], P[1]], "q": Q}, ["p", 0, ":"], "p[0][:] is not a probability distribution: sums to 1.25"),
    ("q-not-a-distribution", {"p": P, "q": [Q[0], [0.3, 0.3, 0.3]]}, ["q", 1, ":"], "q[1][:] is not a probability distribution: sums to 0.9"),
    ("p-negative", {"p": [[1.5, -0.25, -0.25]], "q": [Q[0]]}, ["p", 0, 0], "p[0][0] = 1.5 is outside [0, 1]"),
    ("q-above-one", {"p": [P[0]], "q": [[1.2, -0.1, -0.1]]}, ["q", 0, 0], "q[0][0] = 1.2 is outside [0, 1]"),
    ("unknown-base", {"p": P, "q": Q, "base": "3"}, ["base"], "base: Input should be 'e', '2' or '10'"),
    ("numeric-base", {"p": P, "q": Q, "base": 2}, ["base"], "base: Input should be 'e', '2' or '10'"),
    ("p-missing", {"q": Q}, ["p"], "p: field required"),
    ("p-nan", b'{"p": [0.5, NaN], "q": [0.5, 0.5]}', ["p", 1], "p[1] = NaN is not a finite number"),
    ("scalar", {"p": 1.0, "q": 1.0}, ["p"], "a distribution (C,) or distributions (N, C) are needed"),
    ("three-dimensions", {"p": [P], "q": [P]}, ["p"], "p has shape (1, 2, 3): a distribution (C,) or distributions (N, C) are needed"),
    ("epsilon-negative", {"p": P, "q": Q, "epsilon": -1e-3}, ["epsilon"], "epsilon = -0.001 is outside the open interval (0, 0.5)"),
    ("reduction-unknown", {"p": P, "q": Q, "reduction": "batchmean"}, ["reduction"], "Input should be 'mean', 'sum' or 'none'"),
]
# fmt: on


TABLES = {
    "/v1/cross-entropy": CROSS_ENTROPY,
    "/v1/binary-cross-entropy": BINARY_CROSS_ENTROPY,
    "/v1/softmax": SOFTMAX,
    "/v1/divergence": DIVERGENCE,
}
ROWS = [(endpoint, *row) for endpoint, table in TABLES.items() for row in table]


@pytest.mark.parametrize(
    ("endpoint", "request_body", "loc", "fragment"),
    [(row[0], *row[2:]) for row in ROWS],
    ids=[f"{row[0]}:{row[1]}" for row in ROWS],
)
async def test_bad_request_gets_a_clear_422(
    client: httpx.AsyncClient, endpoint: str, request_body: Any, loc: list[Any] | None, fragment: str
) -> None:
    content = request_body if isinstance(request_body, bytes) else orjson.dumps(request_body)
    response = await client.post(endpoint, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["type"] == "/problems/invalid-input"
    assert problem["title"]
    messages = [error["msg"] for error in problem["errors"]]
    assert any(fragment in message for message in messages), messages
    assert fragment in problem["detail"] or len(problem["errors"]) > 1
    if loc is not None:
        assert loc in [error["loc"] for error in problem["errors"]], problem["errors"]
    # No stack trace, no echo of the whole input.
    assert "Traceback" not in response.text
    assert len(response.content) < 2000


def test_the_tables_are_large() -> None:
    assert len(CROSS_ENTROPY) >= 30
    for table in TABLES.values():
        assert len({row[0] for row in table}) == len(table)


def _without_request_id(response: httpx.Response) -> tuple[int, Any]:
    problem = response.json()
    problem.pop("request_id", None)
    return response.status_code, problem


@pytest.mark.parametrize(
    ("endpoint", "request_body"), [row[:3:2] for row in ROWS], ids=[f"{row[0]}:{row[1]}" for row in ROWS]
)
async def test_a_small_body_parsed_once_is_answered_as_by_the_models_json_parser(
    client: httpx.AsyncClient, endpoint: str, request_body: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small bodies are parsed by orjson once, for their keys and for validation; with that path off,
    pydantic-core's JSON parser reads them: every problem is the same, word for word."""
    content = request_body if isinstance(request_body, bytes) else orjson.dumps(request_body)
    headers = {"content-type": "application/json"}
    parsed_once = _without_request_id(await client.post(endpoint, content=content, headers=headers))
    monkeypatch.setattr(json_request, "SMALL_BODY_BYTES", -1)
    assert _without_request_id(await client.post(endpoint, content=content, headers=headers)) == parsed_once

"""The peer benchmark's own logic, without the peers: what the peers compute, the bodies, the answers.

``python -m bench.peers`` installs MLServer and BentoML and is run by hand (see the README); CI runs
its ``--dry-run`` (tests/test_tools.py) and these checks of the parts that decide what it prints.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from bench.peer_apps.compute import cross_entropy
from bench.peers import (
    BAD_INPUTS,
    agrees,
    describe,
    example,
    parse_v1,
    parse_v2_binary,
    parse_v2_json,
    ratio,
    v1_body,
    v2_binary_body,
    v2_json_body,
)
from bench.run import SEED_BODY, SEED_V2_BODY
from service.core import cross_entropy as core_cross_entropy


@pytest.mark.parametrize("shape", [(2, 3), (7, 5), (64, 100)])
def test_the_peers_compute_what_the_service_computes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 30, shape)  # large logits: a naive exp would overflow
    target = rng.integers(0, shape[1], shape[0])
    loss, losses, softmax = cross_entropy(logits, target)
    want = core_cross_entropy(logits, target, reduction="mean", outputs=["losses", "softmax"])
    assert want.loss is not None and want.losses is not None and want.softmax is not None
    assert loss == pytest.approx(float(want.loss), rel=1e-12)
    np.testing.assert_allclose(losses, want.losses, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(softmax, want.softmax, rtol=1e-12, atol=1e-15)


def test_the_example_is_the_articles() -> None:
    logits, target = example()
    assert logits.tolist() == [[-1, 0.5, 2], [-1, 0.5, 3]] and target.tolist() == [1, 2]

    def lse(row: list[float]) -> float:
        return math.log(sum(math.exp(value) for value in row))

    want = (lse([-1, 0.5, 2]) - 0.5 + lse([-1, 0.5, 3]) - 3) / 2
    assert cross_entropy(logits, target)[0] == pytest.approx(want, rel=1e-15)


def _answers() -> tuple[tuple[float, np.ndarray, np.ndarray], dict[str, bytes]]:
    """The example's answer as /v1 and as v2 JSON would send it."""
    logits, target = example()
    loss, losses, softmax = cross_entropy(logits, target)
    v1 = orjson.dumps({"loss": loss, "losses": losses, "softmax": softmax}, option=orjson.OPT_SERIALIZE_NUMPY)
    outputs = [
        {"name": "loss", "datatype": "FP64", "shape": [1], "data": [loss]},
        {"name": "losses", "datatype": "FP64", "shape": [2], "data": losses.tolist()},
        {"name": "softmax", "datatype": "FP64", "shape": [2, 3], "data": softmax.ravel().tolist()},
    ]
    v2 = orjson.dumps({"model_name": "cross_entropy", "outputs": outputs})
    return (loss, losses, softmax), {"v1": v1, "v2": v2}


def test_answers_parse_back_to_the_same_arrays() -> None:
    want, bodies = _answers()
    assert agrees(parse_v1(bodies["v1"]), want)
    parsed = parse_v2_json(bodies["v2"])
    assert agrees(parsed, want) and parsed[2].shape == (2, 3)


def test_binary_answers_parse_from_their_blobs() -> None:
    (loss, losses, softmax), _ = _answers()
    header = orjson.dumps(
        {
            "outputs": [
                {"name": "loss", "datatype": "FP64", "shape": [], "parameters": {"binary_data_size": 8}},
                {"name": "losses", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}},
                {
                    "name": "softmax",
                    "datatype": "FP32",
                    "shape": [2, 3],
                    "parameters": {"binary_data_size": 24},
                },
            ]
        }
    )
    blobs = np.array([loss]).tobytes() + losses.astype("<f8").tobytes() + softmax.astype("<f4").tobytes()
    parsed = parse_v2_binary(header + blobs, {"inference-header-content-length": str(len(header))})
    assert parsed[0] == loss and parsed[1].tolist() == losses.tolist()
    np.testing.assert_allclose(parsed[2], softmax, rtol=1e-6)
    assert not agrees(parsed, (loss, losses, softmax))  # float32 softmax is not within 1e-9


def test_agreement_fails_on_a_wrong_loss_or_shape() -> None:
    want, _ = _answers()
    loss, losses, softmax = want
    assert agrees(want, want)
    assert not agrees((loss * (1 + 1e-8), losses, softmax), want)
    assert not agrees((loss, losses[:1], softmax), want)
    assert not agrees((loss, losses, softmax.T), want)
    assert not agrees((loss, losses + 1e-6, softmax), want)


def test_request_bodies_carry_the_same_numbers() -> None:
    logits, target = example()
    v1 = orjson.loads(v1_body(logits, target))
    assert v1 == {"logits": logits.tolist(), "target": target.tolist()}
    v2 = orjson.loads(v2_json_body(logits, target))
    by_name = {tensor["name"]: tensor for tensor in v2["inputs"]}
    assert by_name["logits"]["shape"] == [2, 3] and by_name["logits"]["data"] == logits.ravel().tolist()
    assert by_name["target"]["datatype"] == "INT64" and by_name["target"]["data"] == [1, 2]
    body, headers = v2_binary_body(logits, target)
    length = int(headers["inference-header-content-length"])
    assert len(body) == length + logits.nbytes + target.nbytes
    assert np.frombuffer(body[length : length + 48], "<f8").tolist() == logits.ravel().tolist()


def test_bad_inputs_are_what_they_say() -> None:
    for problem, bodies in BAD_INPUTS.items():
        assert set(bodies) == {"v1", "v2 JSON"}, problem
    assert orjson.loads(BAD_INPUTS["negative target"]["v1"])["target"][0] == -1
    assert b"NaN" in BAD_INPUTS["NaN"]["v1"] and b"NaN" in BAD_INPUTS["NaN"]["v2 JSON"]
    ragged = orjson.loads(BAD_INPUTS["ragged array"]["v1"])["logits"]
    assert len(ragged[0]) != len(ragged[1])


def test_answers_to_bad_inputs_are_described() -> None:
    problem = b'{"type": "/problems/invalid-input", "status": 422, "detail": "target[0]: -1 is negative"}'
    assert describe(422, problem) == "422: target[0]: -1 is negative"
    assert describe(200, b'{"loss": 1.5}') == "200, accepted: loss 1.5"
    assert describe(200, b'{"outputs": [{"name": "loss", "data": [NaN]}]}').startswith("200, accepted")
    assert describe(500, b"Internal Server Error") == "500: Internal Server Error"


def test_ratios_are_printed_or_said_missing() -> None:
    assert ratio(3.0, 1.5) == "2.00"
    assert ratio(None, 1.0) == "n/a" and ratio(1.0, 0.0) == "n/a"


def test_bench_run_sends_the_example_as_the_peer_benchmark_does() -> None:
    """``bench.run`` compares /v2 JSON with /v1 on the same example, in the body ``bench.peers`` sends."""
    logits, target = example()
    assert orjson.loads(v1_body(logits, target)) == orjson.loads(SEED_BODY)
    assert orjson.loads(SEED_V2_BODY) == orjson.loads(v2_json_body(logits, target))

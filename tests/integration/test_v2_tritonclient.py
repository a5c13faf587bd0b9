"""A real ``python -m service`` driven by Triton's own client, unmodified, over loopback TCP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.integration.conftest import LiveServer
from tests.reference import Case, assert_matches, cases_for, load_cases
from tests.v2_cases import as_v1_response, triton_inputs, triton_outputs, v2_request

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION_TITLE = "### Call it from Triton and KServe clients"
CROSS_ENTROPY_CASES = cases_for("/v1/cross-entropy")
OTHER_CASES = [case for case in load_cases() if case["endpoint"] != "/v1/cross-entropy"]


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=live_server.url.removeprefix("http://"))
    yield client
    client.close()


def test_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    for model in ("cross_entropy", "binary_cross_entropy", "softmax", "divergence"):
        assert client.is_model_ready(model)
        assert client.is_model_ready(model, model_version="1")
    assert not client.is_model_ready("resnet50")
    assert not client.is_model_ready("softmax", model_version="2")


def test_metadata(client: triton.InferenceServerClient) -> None:
    server = client.get_server_metadata()
    assert server["name"] == "xent-service"
    assert "binary_tensor_data" in server["extensions"]
    model = client.get_model_metadata("cross_entropy")
    assert model["name"] == "cross_entropy"
    assert {"name": "target", "datatype": "INT64", "shape": [-1]} in model["inputs"]
    assert {"name": "loss", "datatype": "FP32", "shape": []} in model["outputs"]
    with pytest.raises(InferenceServerException, match="unknown model 'resnet50'"):
        client.get_model_metadata("resnet50")


def seed_inputs() -> list[triton.InferInput]:
    logits = np.array([[-1, 0.5, 2], [-1, 0.5, 3]], dtype=np.float32)
    target = np.array([1, 2], dtype=np.int64)
    inputs = [triton.InferInput("logits", [2, 3], "FP32"), triton.InferInput("target", [2], "INT64")]
    inputs[0].set_data_from_numpy(logits, binary_data=True)
    inputs[1].set_data_from_numpy(target, binary_data=True)
    return inputs


def test_the_seed_over_binary_tensors(client: triton.InferenceServerClient) -> None:
    names = ("loss", "count", "losses", "softmax", "predictions", "target_probability")
    outputs = [triton.InferRequestedOutput(name, binary_data=True) for name in names]
    result = client.infer("cross_entropy", seed_inputs(), outputs=outputs, request_id="seed")
    response = result.get_response()
    assert response["id"] == "seed"
    assert all("data" not in output for output in response["outputs"])  # every tensor came as bytes
    assert result.as_numpy("loss").dtype == np.float32
    assert round(float(result.as_numpy("loss")), 4) == 0.9185
    assert result.as_numpy("count").item() == 2
    np.testing.assert_allclose(result.as_numpy("losses"), [1.7413, 0.0957], atol=5e-5)
    np.testing.assert_allclose(
        result.as_numpy("softmax"), [[0.0391, 0.1753, 0.7856], [0.0166, 0.0746, 0.9088]], atol=5e-5
    )
    assert result.as_numpy("predictions").tolist() == [2, 2]
    np.testing.assert_allclose(result.as_numpy("target_probability"), [0.1753, 0.9088], atol=5e-5)


def test_a_large_batch_streamed_back_reaches_the_client_intact(client: triton.InferenceServerClient) -> None:
    from service.core import cross_entropy

    rng = np.random.default_rng(11)
    logits = rng.normal(size=(4096, 1000)).astype(np.float32)
    target = rng.integers(0, 1000, 4096)
    inputs = [triton.InferInput("logits", [4096, 1000], "FP32"), triton.InferInput("target", [4096], "INT64")]
    inputs[0].set_data_from_numpy(logits)
    inputs[1].set_data_from_numpy(target)
    names = ("loss", "losses", "softmax", "grad")  # 48 MiB of binary outputs: sent in pieces
    outputs = [triton.InferRequestedOutput(name, binary_data=True) for name in names]
    result = client.infer("cross_entropy", inputs, outputs=outputs)
    want = cross_entropy(logits, target, dtype="float32", outputs=["losses", "softmax", "grad"])
    assert result.as_numpy("loss") == want.loss
    for name in names[1:]:
        np.testing.assert_array_equal(result.as_numpy(name), getattr(want, name))


def test_no_outputs_listed_gives_the_defaults_all_binary(client: triton.InferenceServerClient) -> None:
    # tritonclient then sets binary_data_output for the whole request.
    result = client.infer("cross_entropy", seed_inputs(), parameters={"reduction": "sum"})
    assert [output["name"] for output in result.get_response()["outputs"]] == [
        "loss",
        "count",
        "losses",
        "softmax",
    ]
    assert float(result.as_numpy("loss")) == pytest.approx(1.8369856, rel=1e-6)


def check_case(client: triton.InferenceServerClient, case: Case) -> None:
    request = v2_request(case)
    result = client.infer(
        request.model,
        triton_inputs(request),
        outputs=triton_outputs(request),
        parameters=request.parameters or None,
    )
    outputs = {name: result.as_numpy(name) for name in request.outputs}
    assert_matches(case, as_v1_response(outputs, [*case["expected"], *case.get("torch_nonfinite", {})]))


@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES, ids=[case["name"] for case in CROSS_ENTROPY_CASES])
def test_every_cross_entropy_reference_case(client: triton.InferenceServerClient, case: Case) -> None:
    check_case(client, case)


@pytest.mark.parametrize("case", OTHER_CASES, ids=[f"{c['endpoint']}:{c['name']}" for c in OTHER_CASES])
def test_every_other_reference_case(client: triton.InferenceServerClient, case: Case) -> None:
    check_case(client, case)


def test_errors_reach_the_client_with_their_message(client: triton.InferenceServerClient) -> None:
    inputs = seed_inputs()
    inputs[1].set_data_from_numpy(np.array([1, 7], dtype=np.int64))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("cross_entropy", inputs)
    assert caught.value.status() == "400"
    assert caught.value.message() == "target[1] = 7 is out of range for 3 classes"

    with pytest.raises(InferenceServerException) as caught:
        client.infer("cross_entropy", seed_inputs(), parameters={"ignore_index": "3"})
    assert caught.value.message() == "parameter 'ignore_index' must be an integer, not \"3\""

    with pytest.raises(InferenceServerException) as caught:
        client.infer("resnet50", seed_inputs())
    assert caught.value.status() == "404"


def test_compressed_requests_are_refused_clearly(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="Content-Encoding gzip is not supported"):
        client.infer("cross_entropy", seed_inputs(), request_compression_algorithm="gzip")


def _readme_section() -> str:
    """The README's section on Triton and KServe clients, up to the next section."""
    text = README.read_text()
    start = text.index(SECTION_TITLE)
    ends = [text.find(f"\n{level} ", start + len(SECTION_TITLE)) for level in ("##", "###")]
    end = min((end for end in ends if end != -1), default=len(text))
    return text[start:end]


def _readme_blocks() -> tuple[str, str]:
    text = _readme_section()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    printed = re.search(r"It prints:\n\n```text\n(.*?)```", text, re.DOTALL)
    assert code and printed, "the README section lost its tritonclient snippet or its output"
    return code.group(1), printed.group(1)


def test_the_readme_snippet_works_as_written(live_server: LiveServer) -> None:
    code, printed = _readme_blocks()
    assert 'url="127.0.0.1:8000"' in code
    code = code.replace("127.0.0.1:8000", live_server.url.removeprefix("http://"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed


def test_the_readme_curl_example_answers_as_shown(live_server: LiveServer) -> None:
    text = _readme_section()
    curl = re.search(r"```sh\n(curl .*?)```", text, re.DOTALL)
    shown = re.search(r"```sh\ncurl .*?```\n\n```json\n(.*?)```", text, re.DOTALL)
    assert curl and shown, "the README section lost its curl example or its answer"
    assert "-H 'content-type: application/json'" in curl.group(1)
    body = re.search(r"-d '(.*)'", curl.group(1), re.DOTALL)
    assert body
    response = httpx.post(
        f"{live_server.url}/v2/models/cross_entropy/infer",
        content=body.group(1).encode(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(shown.group(1))

"""openapi/openapi.json as other teams use it: clients generated with each generator's defaults call
the live service for every operation and read every answer into the generated types.

* Python: ``openapi-python-client generate`` (nothing skipped, no warning), then its client calls
  every operation (the article's examples, a 422, /v2 inference in JSON and with binary outputs).
* TypeScript: ``openapi-typescript`` types, an ``openapi-fetch`` script (tests/typescript/client.ts)
  type-checked by ``tsc --strict`` and run with Node.
* The document passes ``@redocly/cli lint`` with the recommended rules (zero problems).

The npm packages come from tests/typescript/package-lock.json (scripts/install-node-packages, which
``scripts/test`` runs and the fixture runs when they are missing). Generated code goes to the gitignored
tests/typescript/generated/ and a temporary directory.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.live import LiveServer, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "openapi" / "openapi.json"
TYPESCRIPT = ROOT / "tests" / "typescript"
BIN = TYPESCRIPT / "node_modules" / ".bin"
PACKAGE = "xent_api"  # as the README generates it
SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
FASHION = [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]

pytestmark = pytest.mark.slow


def _operation_ids() -> set[str]:
    document = json.loads(DOCUMENT.read_text())
    return {operation["operationId"] for item in document["paths"].values() for operation in item.values()}


def _run(command: list[str], *, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ruff, for the generator
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """tests/typescript/node_modules/.bin, installed from the lock file when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(
            "!!! node/npm not installed (scripts/install-system-packages): TypeScript clients NOT TESTED"
        )
    installed = _run([str(ROOT / "scripts" / "install-node-packages")], cwd=ROOT, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    if "NOT INSTALLED" in installed.stderr:
        pytest.skip(
            f"!!! npm packages not installed, TypeScript clients NOT TESTED: {installed.stderr.strip()}"
        )
    for tool in ("openapi-typescript", "tsc", "redocly"):
        assert (BIN / tool).exists(), f"{tool} missing after npm ci: {installed.stdout}{installed.stderr}"
    return BIN


def test_redocly_recommended_rules_find_nothing(node_tools: Path) -> None:
    lint = _run(
        [str(node_tools / "redocly"), "lint", str(DOCUMENT), "--extends", "recommended", "--format", "json"],
        cwd=TYPESCRIPT,
    )
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-2000:]
    report = json.loads(lint.stdout[lint.stdout.index("{") :])
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"][:10]


def test_typescript_client_calls_every_operation(node_tools: Path, live_server: LiveServer) -> None:
    generated = TYPESCRIPT / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    types = _run(
        [str(node_tools / "openapi-typescript"), str(DOCUMENT), "-o", "generated/schema.d.ts"], cwd=TYPESCRIPT
    )
    assert types.returncode == 0, types.stdout + types.stderr
    compiled = _run([str(node_tools / "tsc"), "-p", "tsconfig.json"], cwd=TYPESCRIPT)
    assert compiled.returncode == 0, compiled.stdout[-6000:] + compiled.stderr[-2000:]
    run = _run(["node", str(generated / "js" / "client.js"), live_server.url], cwd=TYPESCRIPT, timeout=60)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    answers = {line["operation"]: line for line in map(json.loads, run.stdout.splitlines())}

    called = {name.removesuffix("_422").removesuffix("_400").removesuffix("_binary") for name in answers}
    assert called >= _operation_ids()
    assert {name: answers[name]["status"] for name in ("cross_entropy_422", "v2_infer_400")} == {
        "cross_entropy_422": 422,
        "v2_infer_400": 400,
    }
    assert all(
        answer["status"] == 200 for name, answer in answers.items() if name[-4:] not in ("_422", "_400")
    )
    assert answers["cross_entropy"]["result"]["loss"] == pytest.approx(0.9184928130357697, rel=1e-12)
    assert answers["cross_entropy"]["result"]["softmax"][0] == pytest.approx(
        [0.0391126, 0.1752904, 0.7855970]
    )
    assert answers["cross_entropy_fashion"]["result"]["loss"] == pytest.approx(2.436116485618568)
    assert answers["cross_entropy_422"]["result"]["loc"] == ["target", 0]
    assert answers["cross_entropy_422"]["result"]["request_id"]
    assert "neither data nor" in answers["v2_infer_400"]["result"]["error"]
    assert answers["divergence"]["result"]["cross_entropy"] == pytest.approx(1.0)  # bits
    binary = answers["v2_infer_binary"]["result"]
    assert binary["content_type"] == "application/octet-stream"
    assert binary["outputs"] == ["loss", "softmax"]
    assert binary["loss"] == pytest.approx(0.9184928130357697, rel=1e-12)
    assert answers["metrics"]["result"] == {"has_requests": True}


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates, with its defaults, imported."""
    where = tmp_path_factory.mktemp("python-client")
    generator = Path(sys.executable).parent / "openapi-python-client"
    command = [
        str(generator),
        "generate",
        "--path",
        str(DOCUMENT),
        "--meta",
        "none",
        "--output-path",
        PACKAGE,
    ]
    generated = _run(command, cwd=where)
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output and "will not be generated" not in output, output
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _api(client: ModuleType, tag: str, operation: str) -> Any:
    return importlib.import_module(f"{client.__name__}.api.{tag}.{operation}")


@pytest.fixture
def client(python_client: ModuleType, live_server: LiveServer) -> Iterator[Any]:
    """The generated ``Client`` for the live service (closed after the test)."""
    with python_client.Client(base_url=live_server.url, raise_on_unexpected_status=True) as client:
        yield client


def test_python_client_calls_every_operation(python_client: ModuleType, client: Any) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    called: set[str] = set()

    def call(tag: str, operation: str, *args: Any, **kwargs: Any) -> Any:
        called.add(operation)
        return _api(python_client, tag, operation).sync(*args, client=client, **kwargs)

    # The losses: the article's two examples, a 422, and one call of every other loss.
    answer = call(
        "losses",
        "cross_entropy",
        body=models.CrossEntropyRequest(logits=SEED["logits"], target=SEED["target"]),
    )
    assert isinstance(answer, models.CrossEntropyResponse)
    assert answer.loss == pytest.approx(0.9184928130357697, rel=1e-12)
    assert answer.losses == pytest.approx([1.7413112966571571, 0.09567432941438228])
    fashion = call(
        "losses", "cross_entropy", body=models.CrossEntropyRequest(probabilities=[FASHION], target=[4])
    )
    assert fashion.loss == pytest.approx(2.436116485618568)
    outputs = [models.CrossEntropyOutput.PREDICTIONS, models.CrossEntropyOutput.GRAD]
    chosen = call(
        "losses",
        "cross_entropy",
        body=models.CrossEntropyRequest(**SEED, outputs=outputs, reduction=models.Reduction.SUM),
    )
    assert chosen.predictions == [2, 2] and len(chosen.grad) == 2
    problem = call("losses", "cross_entropy", body=models.CrossEntropyRequest(logits=[[1, 2]], target=[5]))
    assert isinstance(problem, models.ProblemDetail) and problem.status == 422
    assert problem.errors[0].loc == ["target", 0] and problem.request_id
    bce = call(
        "losses",
        "binary_cross_entropy",
        body=models.BinaryCrossEntropyRequest(logits=[0.5, -1], target=[1, 0]),
    )
    assert isinstance(bce, models.BinaryCrossEntropyResponse) and bce.count == 2
    focal = call("losses", "focal_loss", body=models.FocalLossRequest(logits=[[-1, 0.5, 2]], target=[2]))
    assert isinstance(focal, models.FocalLossResponse) and focal.loss > 0
    softmax = call("losses", "softmax", body=models.SoftmaxRequest(logits=[-1, 0.5, 2]))
    assert softmax.softmax == pytest.approx([0.039112573270687456, 0.1752903921400367, 0.7855970345892759])
    base = models.LogarithmBase.TWO
    divergence = call(
        "losses", "divergence", body=models.DivergenceRequest(p=[[0, 0, 1]], q=[[0.25, 0.25, 0.5]], base=base)
    )
    assert isinstance(divergence, models.DivergenceResponse) and divergence.cross_entropy == pytest.approx(
        1.0
    )

    # The Open Inference Protocol.
    model, version = models.ModelName.CROSS_ENTROPY, models.ModelVersion.V1
    assert call("inference", "v2_server_metadata").extensions == ["binary_tensor_data", "parameters"]
    assert call("inference", "v2_server_live").live is True
    assert call("inference", "v2_server_ready").ready is True
    assert isinstance(call("inference", "v2_model_metadata", model), models.ModelMetadata)
    assert call("inference", "v2_model_version_metadata", model, version).name == "cross_entropy"
    assert call("inference", "v2_model_ready", model).ready is True
    assert call("inference", "v2_model_version_ready", model, version).ready is True
    fp64, int64 = models.TensorDatatype.FP64, models.TensorDatatype.INT64
    request = models.InferenceRequest(
        inputs=[
            models.RequestInput(name="logits", datatype=fp64, shape=[2, 3], data=SEED["logits"]),
            models.RequestInput(name="target", datatype=int64, shape=[2], data=SEED["target"]),
        ],
        outputs=[models.RequestOutput(name="loss")],
    )
    inferred = call("inference", "v2_infer", model, body=request)
    assert isinstance(inferred, models.InferenceResponse)
    assert inferred.outputs[0].data == pytest.approx([0.9184928130357697], rel=1e-12)
    assert inferred.outputs[0].datatype is fp64
    assert call("inference", "v2_infer_version", model, version, body=request).model_version == "1"
    bad = models.InferenceRequest(inputs=[models.RequestInput(name="logits", datatype=fp64, shape=[1])])
    refused = call("inference", "v2_infer", model, body=bad)
    assert isinstance(refused, models.InferenceProblem) and "neither data nor" in refused.error

    # Binary outputs: the generated client types a 200 as JSON (its first content type), so binary
    # answers are read with the generated client's own httpx client, as its documentation suggests.
    binary = request.to_dict() | {"parameters": {"binary_data_output": True}}
    raw = client.get_httpx_client().post("/v2/models/cross_entropy/infer", json=binary)
    assert raw.headers["content-type"] == "application/octet-stream"
    length = int(raw.headers["inference-header-content-length"])
    header = models.InferenceResponse.from_dict(json.loads(raw.content[:length]))
    assert header.outputs[0].parameters.additional_properties == {"binary_data_size": 8}
    assert struct.unpack("<d", raw.content[length:]) == pytest.approx((0.9184928130357697,))

    # Operations.
    assert call("operations", "health_live").status is models.HealthStatus.OK
    assert call("operations", "health_ready").status is models.HealthStatus.READY
    assert "xent_requests_total" in call("operations", "metrics")
    assert called == _operation_ids()


def test_python_client_sends_the_key(python_client: ModuleType, tmp_path: Path) -> None:
    """With XENT_API_KEYS set (and /metrics private), the generated AuthenticatedClient's bearer token is
    what the service reads, and an unauthenticated call gets the declared 401 problem."""
    server = start_server(tmp_path, env={"XENT_API_KEYS": "generated-key", "XENT_PUBLIC_METRICS": "false"})
    try:
        keyed = python_client.AuthenticatedClient(base_url=server.url, token="generated-key")
        anonymous = python_client.Client(base_url=server.url)
        with keyed, anonymous:
            _check_keys(python_client, keyed, anonymous)
    finally:
        assert stop_server(server) == 0, server.output()


def _check_keys(python_client: ModuleType, keyed: Any, anonymous: Any) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    softmax = _api(python_client, "losses", "softmax")
    body = models.SoftmaxRequest(logits=[0.0, 0.0])
    assert softmax.sync(client=keyed, body=body).softmax == [0.5, 0.5]
    refused = softmax.sync_detailed(client=anonymous, body=body)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.ProblemDetail)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    metrics = _api(python_client, "operations", "metrics")
    private = metrics.sync_detailed(client=anonymous)
    assert private.status_code == 401 and isinstance(private.parsed, models.ProblemDetail)
    assert "xent_requests_total" in metrics.sync(client=keyed)
    health = _api(python_client, "operations", "health_live").sync(client=anonymous)
    assert health.status is models.HealthStatus.OK  # public by default


def test_the_readme_example_prints_what_it_shows(python_client: ModuleType, live_server: LiveServer) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    code = next(block for block in blocks if f"from {PACKAGE} import Client" in block)
    shown = [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code.replace("http://127.0.0.1:8000", live_server.url), "README.md", "exec"), {})
    assert output.getvalue().split() == shown == ["0.9184928130357697"]

"""Peers: the service against what a user would serve the same loss with instead, side by side.

    python -m bench.peers               # OPTIONAL, run by hand: installs the peers, then about 5 minutes
    python -m bench.peers --dry-run     # no peer: the service and FastAPI's constant endpoint, tiny sizes

The peers are Seldon MLServer 1.7 (v2 JSON) and BentoML 1.4. Each is installed by this script with pip
into its own virtual environment under a cache folder (``--cache``, default
~/.cache/xent-service/peers/<name>; the first run downloads them from PyPI and takes minutes), because
they pin other FastAPI/Starlette versions than the service. Each serves the same computation as a
minimal runtime with NumPy inside (``bench/peer_apps/``: the mean loss, per-sample losses and softmax,
what /v1/cross-entropy answers by default), request logs off. The test suite runs only ``--dry-run``
(CI installs no peer).

One process each, on loopback; rounds alternate between the servers and the figures are medians:

1. small requests (the article's example): req/s and p50/p99 from wrk (or a Python load generator
   where wrk is missing) for the service's /v1 and /v2 JSON, FastAPI's constant endpoint on the same
   uvicorn stack (``bench/baseline_app.py``), MLServer's v2 JSON, BentoML, and uvicorn alone (a bare
   ASGI app answering a constant: the floor of the HTTP stack every server here stands on);
2. a large JSON round trip (4096 x 1000 float64), and the service's /v2 with binary tensors (no peer
   here reads them: MLServer takes v2 JSON only);
3. peak memory per body byte: the largest VmHWM in the server's process tree after the large requests;
4. every answer is checked against ``bench.peer_apps.compute`` (loss within 1e-9 relative), and each
   server is sent a negative target, a ragged array and a NaN: what it answers is printed, with the
   other features that differ (logging, HTTP stack).

The service runs as shipped: its access log is on (the peers' request logs are off).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from numpy.typing import NDArray

from bench.memory import _v2_binary_body
from bench.peer_apps.compute import cross_entropy
from bench.run import SEED_BODY, V2_PATH, baseline_command, free_port, post_raw, python_load, wrk

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "bench" / "peer_apps"
RESULTS = ROOT / "bench" / "results"
DEFAULT_CACHE = Path.home() / ".cache" / "xent-service" / "peers"
JSON = {"content-type": "application/json"}

Row = dict[str, Any]
Answer = tuple[float, NDArray[np.float64], NDArray[np.float64]]  # loss, losses, softmax

# --- requests and answers ----------------------------------------------------------------------------


def example() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The article's example (``SEED_BODY``) as arrays."""
    document = orjson.loads(SEED_BODY)
    return np.array(document["logits"], dtype=np.float64), np.array(document["target"], dtype=np.int64)


def v1_body(logits: NDArray[Any], target: NDArray[Any]) -> bytes:
    """/v1/cross-entropy's JSON (BentoML's service takes the same)."""
    return orjson.dumps({"logits": logits, "target": target}, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_json_body(logits: NDArray[Any], target: NDArray[Any]) -> bytes:
    """The v2 (Open Inference) protocol's JSON: flat row-major ``data`` with a ``shape``."""
    inputs = [
        {"name": "logits", "datatype": "FP64", "shape": list(logits.shape), "data": logits.ravel()},
        {"name": "target", "datatype": "INT64", "shape": list(target.shape), "data": target.ravel()},
    ]
    outputs = [{"name": name} for name in ("loss", "losses", "softmax")]
    return orjson.dumps({"inputs": inputs, "outputs": outputs}, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_binary_body(logits: NDArray[Any], target: NDArray[Any]) -> tuple[bytes, dict[str, str]]:
    """The service's /v2 with binary tensors both ways (Triton's extension)."""
    body, header_length = _v2_binary_body(logits, target, ["loss", "losses", "softmax"])
    return body, {
        "inference-header-content-length": str(header_length),
        "content-type": "application/octet-stream",
    }


def parse_v1(content: bytes) -> Answer:
    document = orjson.loads(content)
    return (
        float(document["loss"]),
        np.asarray(document["losses"], dtype=np.float64),
        np.asarray(document["softmax"], dtype=np.float64),
    )


def _v2_outputs(outputs: list[Row], blobs: bytes = b"") -> Answer:
    arrays: dict[str, NDArray[np.float64]] = {}
    offset = 0
    for output in outputs:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values = np.asarray(output["data"], dtype=np.float64)
        else:
            dtype = {"FP64": "<f8", "FP32": "<f4"}[output["datatype"]]
            values = np.frombuffer(blobs, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset)
            offset += size
        arrays[output["name"]] = values.astype(np.float64).reshape(output["shape"])
    return float(arrays["loss"].reshape(-1)[0]), arrays["losses"], arrays["softmax"]


def parse_v2_json(content: bytes) -> Answer:
    return _v2_outputs(orjson.loads(content)["outputs"])


def parse_v2_binary(content: bytes, headers: dict[str, str]) -> Answer:
    length = int(headers.get("inference-header-content-length", len(content)))
    return _v2_outputs(orjson.loads(content[:length])["outputs"], content[length:])


def agrees(answer: Answer, want: Answer) -> bool:
    """The loss within 1e-9 relative, the arrays element by element within 1e-9 (+1e-12 absolute)."""
    loss, losses, softmax = answer
    return (
        abs(loss - want[0]) <= 1e-9 * abs(want[0])
        and losses.shape == want[1].shape
        and softmax.shape == want[2].shape
        and bool(np.allclose(losses, want[1], rtol=1e-9, atol=1e-12))
        and bool(np.allclose(softmax, want[2], rtol=1e-9, atol=1e-12))
    )


# --- the servers --------------------------------------------------------------------------------------


@dataclass
class Server:
    """One server: how it is started, where its /v1-style and v2 JSON routes are, what differs."""

    name: str
    command: list[str]
    ready_path: str
    v1_path: str | None  # takes /v1's JSON
    v2_path: str | None  # takes v2 JSON
    binary: bool  # takes /v2 binary tensors
    constant: bool  # answers a constant (FastAPI's ceiling): no answer to check
    features: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    port: int = 0
    process: subprocess.Popen[bytes] | None = None


def service_server(port: int) -> Server:
    return Server(
        "service", [sys.executable, "-m", "service", "--port", str(port)], "/health/ready",
        "/v1/cross-entropy", V2_PATH, True, False,
        {
            "validation": "checks every input; 422 problem+json naming the field",
            "logging": "access log ON (its default: one line per request)",
            "HTTP stack": "uvicorn + its own lean ASGI transport for the hot routes, orjson",
        },
        port=port,
    )  # fmt: skip


def constant_server(port: int) -> Server:
    return Server(
        "fastapi-constant", baseline_command(port, 1), "/docs", "/v1/cross-entropy", None, False, True,
        {
            "validation": "none (answers a constant)",
            "logging": "uvicorn --log-level warning: no access log",
            "HTTP stack": "FastAPI + uvicorn (the service's versions), one route",
        },
        port=port,
    )  # fmt: skip


def floor_server(port: int) -> Server:
    command = baseline_command(port, 1)
    command[command.index("bench.baseline_app:app")] = "bench.baseline_app:bare"
    return Server(
        "uvicorn-alone", command, "/health", "/v1/cross-entropy", None, False, True,
        {
            "validation": "none (reads the body, answers a constant)",
            "logging": "uvicorn --log-level warning: no access log",
            "HTTP stack": "uvicorn (the service's version), a bare ASGI app: no framework",
        },
        port=port,
    )  # fmt: skip


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str
    program: str  # the peer's command-line program, in its virtual environment's bin/


PEERS = {
    "mlserver": Peer("mlserver", "mlserver==1.7.*", "mlserver"),
    "bentoml": Peer("bentoml", "bentoml==1.4.*", "bentoml"),
}


def install(peer: Peer, cache: Path) -> Path:
    """The peer's virtual environment under ``cache``, made with pip the first time (log beside it)."""
    venv = cache / peer.name
    program = venv / "bin" / peer.program
    if program.exists():
        return venv
    print(f"installing {peer.requirement} into {venv} (first run: this takes minutes) ...", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"{peer.name}.install.log"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
        pip = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", peer.requirement, "numpy"]
        if subprocess.run(pip, stdout=out, stderr=out, check=False).returncode != 0 or not program.exists():
            raise RuntimeError(f"pip could not install {peer.requirement}: see {log}")
    return venv


def peer_server(peer: Peer, venv: Path, port: int, workdir: Path) -> Server:
    """The peer serving ``bench/peer_apps`` on ``port``; its settings are written to ``workdir``."""
    env = {"PYTHONPATH": str(APPS), "BENTOML_DO_NOT_TRACK": "true", "BENTOML_HOME": str(workdir / "home")}
    if peer.name == "mlserver":
        settings = {
            "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
            "parallel_workers": 0, "debug": False, "metrics_endpoint": None,
        }  # fmt: skip
        model = {"name": "cross_entropy", "implementation": "mlserver_runtime.CrossEntropyRuntime"}
        (workdir / "settings.json").write_text(json.dumps(settings))
        (workdir / "model-settings.json").write_text(json.dumps(model))
        return Server(
            "mlserver", [str(venv / "bin" / "mlserver"), "start", str(workdir)], "/v2/health/ready",
            None, V2_PATH, False, False,
            {
                "validation": "the v2 protocol's types only (the runtime checks nothing more)",
                "logging": "debug off, parallel workers off (no per-request log line)",
                "HTTP stack": "FastAPI + uvicorn (MLServer's pinned versions), its own v2 codecs",
            },
            env=env, port=port,
        )  # fmt: skip
    return Server(
        "bentoml",
        [str(venv / "bin" / "bentoml"), "serve", "bentoml_service:CrossEntropy", "--host", "127.0.0.1",
         "--port", str(port)],
        "/readyz", "/v1/cross-entropy", None, False, False,
        {
            "validation": "pydantic types of the API's signature (list[list[float]], list[int])",
            "logging": "access log disabled in the service's config",
            "HTTP stack": "Starlette + uvicorn under BentoML's process supervisor (circus)",
        },
        env=env, cwd=APPS, port=port,
    )  # fmt: skip


@contextmanager
def running(server: Server, log: Path, seconds: float = 180) -> Iterator[Server]:
    """Start ``server`` in its own process group, wait (bounded) until ready, stop the group at the end."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    environment.pop("PYTHONPATH", None)
    environment.update(server.env)
    with log.open("wb") as out:
        server.process = subprocess.Popen(
            server.command, cwd=server.cwd, env=environment, stdout=out, stderr=out, start_new_session=True
        )
    try:
        deadline = time.monotonic() + seconds
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}: {_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready within {seconds:.0f} s: {_tail(log)}")
            try:
                url = f"http://127.0.0.1:{server.port}{server.ready_path}"
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield server
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait(timeout=30)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"


def _process_tree(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _kib(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def largest(server: Server, name: str) -> float:
    """The largest ``name`` (VmRSS, VmHWM) in MiB among the server's processes (BentoML runs several)."""
    assert server.process is not None
    return max(_kib(pid, name) for pid in _process_tree(server.process.pid)) / 1024


# --- the measurements -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route measured: a server's /v1-style JSON, v2 JSON, or v2 binary."""

    server: Server
    kind: str  # "v1", "v2 JSON", "v2 binary"

    @property
    def label(self) -> str:
        return f"{self.server.name} {self.kind}"

    @property
    def path(self) -> str:
        path = self.server.v1_path if self.kind == "v1" else self.server.v2_path
        assert path is not None
        return path

    def body(self, logits: NDArray[Any], target: NDArray[Any]) -> tuple[bytes, dict[str, str]]:
        if self.kind == "v1":
            return v1_body(logits, target), JSON
        if self.kind == "v2 JSON":
            return v2_json_body(logits, target), JSON
        return v2_binary_body(logits, target)

    def parse(self, content: bytes, headers: dict[str, str]) -> Answer:
        if self.kind == "v1":
            return parse_v1(content)
        if self.kind == "v2 JSON":
            return parse_v2_json(content)
        return parse_v2_binary(content, headers)


def json_routes(servers: list[Server]) -> list[Route]:
    routes = []
    for server in servers:
        if server.v1_path:
            routes.append(Route(server, "v1"))
        if server.v2_path:
            routes.append(Route(server, "v2 JSON"))
    return routes


def small_requests(routes: list[Route], seconds: float, rounds: int, connections: int) -> list[Row]:
    """req/s and latency of the article's example, rounds alternating between the routes; medians."""
    load = wrk if _has_wrk() else python_load
    logits, target = example()
    want = cross_entropy(logits, target)
    runs: dict[str, list[dict[str, float]]] = {route.label: [] for route in routes}
    agree: dict[str, bool | None] = {}
    for route in routes:
        body, headers = route.body(logits, target)
        status, answer_headers, content = post_raw(route.server.port, route.path, body, headers)
        if status != 200:
            raise RuntimeError(f"{route.label}: status {status} for the example: {content[:300]!r}")
        agree[route.label] = (
            None if route.server.constant else agrees(route.parse(content, answer_headers), want)
        )
        load(f"http://127.0.0.1:{route.server.port}{route.path}", min(seconds, 2.0), connections, body)
    for _ in range(rounds):
        for route in routes:
            body, _ = route.body(logits, target)
            url = f"http://127.0.0.1:{route.server.port}{route.path}"
            runs[route.label].append(load(url, seconds, connections, body))
    return [
        {
            "route": route.label,
            "load": load.__name__,
            "rps": statistics.median(run["rps"] for run in runs[route.label]),
            "p50_ms": statistics.median(run["p50_ms"] for run in runs[route.label]),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs[route.label]),
            "agrees": agree[route.label],
        }
        for route in routes
    ]


def _has_wrk() -> bool:
    return subprocess.run(["which", "wrk"], capture_output=True, check=False).returncode == 0


def large_requests(routes: list[Route], rows: int, classes: int, rounds: int) -> list[Row]:
    """One large batch per route, rounds alternating: round-trip time, answer check, peak memory."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(rows, classes))
    target = rng.integers(0, classes, rows)
    want = cross_entropy(logits, target)
    bodies = {route.label: route.body(logits, target) for route in routes}
    times: dict[str, list[float]] = {route.label: [] for route in routes}
    agree: dict[str, bool] = {}
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for route in routes:
            if route.label in errors:
                continue
            body, headers = bodies[route.label]
            started = time.perf_counter()
            try:
                status, answer_headers, content = post_raw(route.server.port, route.path, body, headers)
            except OSError as error:
                errors[route.label] = f"{type(error).__name__}: {error}"
                continue
            times[route.label].append(time.perf_counter() - started)
            if status != 200:
                errors[route.label] = f"status {status}: {content[:200]!r}"
            elif route.label not in agree:
                agree[route.label] = agrees(route.parse(content, answer_headers), want)
            del content
    result = []
    for route in routes:
        body_mib = len(bodies[route.label][0]) / 2**20
        row: Row = {"route": route.label, "body_mib": body_mib, "error": errors.get(route.label)}
        if times[route.label]:
            row |= {"seconds": statistics.median(times[route.label]), "agrees": agree.get(route.label, False)}
        result.append(row)
    return result


def peak_memory(routes: list[Row], servers: list[Server], idle: dict[str, float]) -> list[Row]:
    """Each server's peak RSS over the run against the largest JSON body it was sent.

    VmHWM is a high-water mark: for the service, which took /v1 and /v2 JSON (and binary), it is
    the larger of its routes' peaks (``bench/memory.py`` measures one route per fresh process).
    """
    rows = []
    for server in servers:
        mine = [row for row in routes if row["route"].startswith(server.name + " ") and "seconds" in row]
        bodies = [row["body_mib"] for row in mine if "binary" not in row["route"]]
        if not bodies or server.constant:
            continue
        peak = largest(server, "VmHWM")
        rows.append(
            {
                "server": server.name,
                "idle_rss_mib": idle[server.name],
                "peak_rss_mib": peak,
                "peak_over_body": peak / max(bodies),
                "growth_over_body": (peak - idle[server.name]) / max(bodies),
            }
        )
    return rows


#: What each server is sent to see whether it checks its input: /v1's JSON and v2 JSON variants.
BAD_INPUTS: dict[str, dict[str, bytes]] = {
    "negative target": {
        "v1": b'{"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [-1, 2]}',
        "v2 JSON": b'{"inputs": [{"name": "logits", "datatype": "FP64", "shape": [2, 3], '
        b'"data": [-1, 0.5, 2, -1, 0.5, 3]}, {"name": "target", "datatype": "INT64", "shape": [2], '
        b'"data": [-1, 2]}]}',
    },
    "ragged array": {
        "v1": b'{"logits": [[-1, 0.5, 2], [-1, 0.5]], "target": [1, 0]}',
        "v2 JSON": b'{"inputs": [{"name": "logits", "datatype": "FP64", "shape": [2, 3], '
        b'"data": [[-1, 0.5, 2], [-1, 0.5]]}, {"name": "target", "datatype": "INT64", "shape": [2], '
        b'"data": [1, 0]}]}',
    },
    "NaN": {
        "v1": b'{"logits": [[-1, NaN, 2], [-1, 0.5, 3]], "target": [1, 2]}',
        "v2 JSON": b'{"inputs": [{"name": "logits", "datatype": "FP64", "shape": [2, 3], '
        b'"data": [-1, NaN, 2, -1, 0.5, 3]}, {"name": "target", "datatype": "INT64", "shape": [2], '
        b'"data": [1, 2]}]}',
    },
}


def describe(status: int, content: bytes) -> str:
    """A short account of an answer to a bad input: its status and what it says."""
    text = content.decode(errors="replace")
    if status == 200:
        try:
            document = orjson.loads(content)
            loss = document["loss"] if "loss" in document else document["outputs"][0]["data"]
            return f"200, accepted: loss {orjson.dumps(loss).decode()}"
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return f"200, accepted: {text[:60]}"
    try:
        document = orjson.loads(content)
        text = str(document.get("detail") or document.get("error") or text)
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"{status}: {' '.join(text.split())[:90]}"


def validation(routes: list[Route]) -> list[Row]:
    rows = []
    for route in routes:
        if route.server.constant or route.kind == "v2 binary":
            continue
        answers = {}
        for problem, bodies in BAD_INPUTS.items():
            try:
                status, _, content = post_raw(route.server.port, route.path, bodies[route.kind], JSON)
                answers[problem] = describe(status, content)
            except OSError as error:
                answers[problem] = f"no answer ({type(error).__name__})"
        rows.append({"route": route.label, **answers})
    return rows


# --- the run and its table --------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.2f}"


def print_table(report: Row) -> None:
    print(f"\nmachine: {report['machine']}")
    if report["dry_run"]:
        print("\n!!! DRY RUN: NO PEER WAS INSTALLED OR MEASURED (the service, FastAPI's constant")
        print("!!! endpoint and uvicorn alone, tiny sizes). The peer run is optional and run by hand:")
        print("!!! python -m bench.peers")
    for name, error in report["peer_errors"].items():
        print(f"\n!!! PEER {name.upper()} NOT MEASURED: {error}")
    small = {row["route"]: row for row in report["small_requests"]}
    base = small.get("service v1", {}).get("rps")
    print(f"\n1. small requests (the article's example), {report['small_load']}")
    print(f"   {'route':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'service v1 / it':>16}  answer")
    for row in report["small_requests"]:
        checked = "constant" if row["agrees"] is None else "agrees" if row["agrees"] else "DIFFERS"
        print(
            f"   {row['route']:26} {row['rps']:8.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}"
            f" {ratio(base, row['rps']):>16}  {checked}"
        )
    large = report["large_requests"]
    shape = report["large_shape"]
    print(f"\n2. large request {shape[0]}x{shape[1]} float64: round trip, rounds alternating, medians")
    v1_time = next((row.get("seconds") for row in large if row["route"] == "service v1"), None)
    print(f"   {'route':26} {'body MiB':>9} {'seconds':>8} {'it / service v1':>16}  answer")
    for row in large:
        if row.get("seconds") is None:
            print(f"   {row['route']:26} {row['body_mib']:9.1f}  FAILED: {row['error']}")
            continue
        print(
            f"   {row['route']:26} {row['body_mib']:9.1f} {row['seconds']:8.3f}"
            f" {ratio(row['seconds'], v1_time):>16}  {'agrees' if row['agrees'] else 'DIFFERS'}"
            + (f"; then {row['error']}" if row["error"] else "")
        )
    print("   (v2 binary: the service only; MLServer reads v2 JSON only, BentoML has no v2 route)")
    print("   peak RSS over the run / the largest JSON body (growth over idle / body):")
    for row in report["peak_memory"]:
        print(
            f"   {row['server']:26} {row['peak_rss_mib']:7.0f} MiB = {row['peak_over_body']:.2f} x body"
            f" ({row['growth_over_body']:.2f}; idle {row['idle_rss_mib']:.0f} MiB)"
        )
    print("\n3. bad input: what each answers")
    for row in report["validation"]:
        print(f"   {row['route']}")
        for problem in BAD_INPUTS:
            print(f"      {problem:16} {row[problem]}")
    print("\n4. what else differs")
    for name, features in report["features"].items():
        print(f"   {name}: " + "; ".join(f"{key}: {value}" for key, value in features.items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="no peer; tiny sizes (what the tests run)")
    parser.add_argument("--peers", default="mlserver,bentoml", help="comma-separated: mlserver, bentoml")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the peers' venvs live")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load per route and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of small requests (and large ones)")
    parser.add_argument("--json", type=Path, help="where to write the report (default: bench/results/)")
    args = parser.parse_args(argv)
    dry = args.dry_run
    seconds, rounds, connections = (1.0, 1, 8) if dry else (args.seconds, args.rounds, 64)
    rows, classes = (64, 100) if dry else (4096, 1000)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    report: Row = {
        "machine": f"{machine}, Python {platform.python_version()}",
        "dry_run": dry,
        "peer_errors": {},
        "large_shape": [rows, classes],
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="xent-peers-") as scratch:
        logs = Path(scratch)
        servers = [
            stack.enter_context(running(service_server(free_port()), logs / "service.log")),
            stack.enter_context(running(constant_server(free_port()), logs / "constant.log")),
            stack.enter_context(running(floor_server(free_port()), logs / "floor.log")),
        ]
        for name in [] if dry else [name.strip() for name in args.peers.split(",") if name.strip()]:
            peer = PEERS[name]
            try:
                venv = install(peer, args.cache)
                workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
                server = peer_server(peer, venv, free_port(), workdir)
                servers.append(stack.enter_context(running(server, logs / f"{name}.log")))
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                report["peer_errors"][name] = str(error)
                print(f"!!! PEER {name.upper()} NOT MEASURED: {error}", file=sys.stderr, flush=True)
        routes = json_routes(servers)
        report["small_load"] = f"{'wrk' if _has_wrk() else 'python_load'}, {connections} connections"
        report["small_load"] += f", {rounds} round(s) of {seconds:.0f} s per route"
        report["small_requests"] = small_requests(routes, seconds, rounds, connections)
        measured = [route for route in routes if not route.server.constant]
        measured.insert(2, Route(servers[0], "v2 binary"))
        idle = {server.name: largest(server, "VmRSS") for server in servers}
        report["large_requests"] = large_requests(measured, rows, classes, rounds)
        report["peak_memory"] = peak_memory(report["large_requests"], servers, idle)
        report["validation"] = validation(routes)
        report["features"] = {server.name: server.features for server in servers}
    print_table(report)
    path = args.json or RESULTS / f"peers-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

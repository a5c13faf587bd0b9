"""What a large batch costs over /v2 with binary tensors, beside /v1 JSON and the NumPy work alone.

    python bench/v2_roundtrip.py [--rows 4096] [--classes 1000] [--repeats 11]

Starts ``python -m service`` on a free loopback port (default settings), then times, interleaved in
each repeat so that all three see the same machine state:

* core:        ``cross_entropy`` on the float32 arrays in this process (what any route must pay);
* v2 codec:    a received binary request body (built once, beforehand) through the v2 decoder, the
               model and the response encoder in this process, no HTTP: what the server's protocol
               handling adds to the core;
* v2 binary:   one POST /v2/models/cross_entropy/infer round trip with binary tensors both ways, with
               httpx, including building the body and reading the outputs into arrays;
* upload only: the same body POSTed to a model that does not exist: the server reads it all, then
               answers 404; what moving the request alone costs;
* v1 JSON:     the same request as /v1/cross-entropy JSON (``"dtype": "float32"``), including writing
               and parsing the JSON;
* tritonclient: the v2 round trip through tritonclient, if it is installed.

All compute the loss, the per-sample losses and the softmax (v1's default outputs) in float32, and
the script checks that they agree. It prints the medians and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the path: the script runs from anywhere.
from service.api.arrays import ArrayLimits  # noqa: E402
from service.api.v2.codec import decode_request, encode_response  # noqa: E402
from service.api.v2.registry import MODELS, run  # noqa: E402
from service.core import cross_entropy  # noqa: E402

Arrays = dict[str, NDArray[Any]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    env["XENT_LOG_LEVEL"] = "warning"
    process = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the server did not start")


def core(logits: NDArray[np.float32], target: NDArray[np.int64]) -> Arrays:
    result = cross_entropy(logits, target, dtype="float32", outputs=("losses", "softmax"))
    assert result.loss is not None and result.losses is not None and result.softmax is not None
    return {"loss": np.asarray(result.loss), "losses": result.losses, "softmax": result.softmax}


def v2_body(logits: NDArray[np.float32], target: NDArray[np.int64]) -> tuple[bytes, int]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "logits",
                    "datatype": "FP32",
                    "shape": list(logits.shape),
                    "parameters": {"binary_data_size": logits.nbytes},
                },
                {
                    "name": "target",
                    "datatype": "INT64",
                    "shape": list(target.shape),
                    "parameters": {"binary_data_size": target.nbytes},
                },
            ],
            "outputs": [{"name": name} for name in ("loss", "losses", "softmax")],
            "parameters": {"binary_data_output": True},
        }
    )
    return b"".join([header, logits.data, target.data]), len(header)


def read_outputs(content: bytes, length: int) -> Arrays:
    arrays: Arrays = {}
    offset = length
    for output in json.loads(content[:length])["outputs"]:
        size = output["parameters"]["binary_data_size"]
        dtype = {"FP32": "<f4", "INT64": "<i8"}[output["datatype"]]
        arrays[output["name"]] = np.frombuffer(
            content, dtype, size // np.dtype(dtype).itemsize, offset
        ).reshape(output["shape"])
        offset += size
    return arrays


def v2_codec(body: bytearray, length: int) -> Arrays:
    request = decode_request(body, length, ArrayLimits())
    encoded = encode_response(
        model_name="cross_entropy",
        model_version="1",
        request_id=None,
        outputs=run(MODELS["cross_entropy"], request),
    )
    assert encoded.header_length is not None
    # A large answer comes in pieces, which the server sends one by one; here they are read together.
    body = encoded.body if encoded.chunks is None else b"".join(encoded.chunks)
    return read_outputs(body, encoded.header_length)


def v2_binary(client: httpx.Client, logits: NDArray[np.float32], target: NDArray[np.int64]) -> Arrays:
    body, length = v2_body(logits, target)
    response = client.post(
        "/v2/models/cross_entropy/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(length)},
    )
    response.raise_for_status()
    return read_outputs(response.content, int(response.headers["inference-header-content-length"]))


def upload_only(client: httpx.Client, logits: NDArray[np.float32], target: NDArray[np.int64]) -> Arrays:
    body, length = v2_body(logits, target)
    response = client.post(
        "/v2/models/no_such_model/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(length)},
    )
    assert response.status_code == 404, response.text
    return {}


def v1_json(client: httpx.Client, logits: NDArray[np.float32], target: NDArray[np.int64]) -> Arrays:
    body = orjson.dumps(
        {"logits": logits, "target": target, "dtype": "float32"}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    response = client.post("/v1/cross-entropy", content=body, headers={"content-type": "application/json"})
    response.raise_for_status()
    data = orjson.loads(response.content)
    return {
        "loss": np.asarray(data["loss"], dtype=np.float32),
        "losses": np.array(data["losses"], dtype=np.float32),
        "softmax": np.array(data["softmax"], dtype=np.float32),
    }


def tritonclient_call(url: str) -> Callable[[NDArray[np.float32], NDArray[np.int64]], Arrays] | None:
    try:
        import tritonclient.http as triton
    except ImportError:
        return None
    client = triton.InferenceServerClient(url=url, network_timeout=300.0, connection_timeout=60.0)

    def call(logits: NDArray[np.float32], target: NDArray[np.int64]) -> Arrays:
        inputs = [
            triton.InferInput("logits", list(logits.shape), "FP32"),
            triton.InferInput("target", list(target.shape), "INT64"),
        ]
        inputs[0].set_data_from_numpy(logits)
        inputs[1].set_data_from_numpy(target)
        outputs = [triton.InferRequestedOutput(name) for name in ("loss", "losses", "softmax")]
        result = client.infer("cross_entropy", inputs, outputs=outputs)
        return {name: result.as_numpy(name) for name in ("loss", "losses", "softmax")}

    return call


def timed(call: Callable[[], Arrays]) -> tuple[float, Arrays]:
    start = time.perf_counter()
    arrays = call()
    return time.perf_counter() - start, arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(args.rows, args.classes)).astype(np.float32)
    target = rng.integers(0, args.classes, args.rows).astype(np.int64)
    body, length = v2_body(logits, target)
    received = bytearray(body)  # as the server holds a request body
    port = free_port()
    server = start_server(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            contenders: dict[str, Callable[[], Arrays]] = {
                "core": lambda: core(logits, target),
                "v2 codec": lambda: v2_codec(received, length),
                "v2 binary": lambda: v2_binary(client, logits, target),
                "upload only": lambda: upload_only(client, logits, target),
                "v1 JSON": lambda: v1_json(client, logits, target),
            }
            triton_call = tritonclient_call(f"127.0.0.1:{port}")
            if triton_call is not None:
                contenders["tritonclient"] = lambda: triton_call(logits, target)
            times: dict[str, list[float]] = {name: [] for name in contenders}
            reference = core(logits, target)
            for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
                for name, call in contenders.items():
                    seconds, arrays = timed(call)
                    for key, got in arrays.items():
                        np.testing.assert_allclose(got, reference[key], rtol=1e-5, atol=1e-6, err_msg=name)
                    if repeat:
                        times[name].append(seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)

    medians = {name: statistics.median(values) for name, values in times.items()}
    mib = (logits.nbytes + target.nbytes) / 2**20
    print(
        f"{args.rows} x {args.classes} float32 logits + int64 target ({mib:.1f} MiB as binary), "
        f"outputs loss, losses, softmax; median of {args.repeats}, interleaved"
    )
    for name, seconds in medians.items():
        print(f"  {name:16s} {seconds * 1000:8.1f} ms   {seconds / medians['core']:6.2f} x core")
    print(f"  v1 JSON / v2 binary: {medians['v1 JSON'] / medians['v2 binary']:.1f} x")


if __name__ == "__main__":
    main()

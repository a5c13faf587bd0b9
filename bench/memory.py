"""Memory of one large JSON request: how much the server process grows for a body at the size limit.

    python bench/memory.py --rows 4096 --classes 1000 [--outputs losses,softmax] [--at-limit] [--v2-binary]
                           [--compact]

Starts ``python -m service`` on a free loopback port (with ``XENT_MAX_BODY_BYTES`` set to the body's
size when ``--at-limit``), warms it up with a small request, then sends the batch as JSON and reads the
server's resident set before (VmRSS) and its peak after (VmHWM) from /proc. Prints the body size, the
peak RSS, the growth, and both as multiples of the body; and, as issue 18 states its target, as
multiples of the body plus the outputs' own bytes (``outputs_mb``: 8 bytes per number of the outputs
asked for, as the server holds them): ``peak_over_io`` is peak RSS / (body + outputs), the idle
process included, and ``growth_over_io`` is (peak - idle) / (body + outputs). With ``--v2-binary``
the same batch goes to /v2 as float64 binary tensors, every output asked for as binary. With
``--compact`` the logits are one-digit integers (``[[3,-1,0,...``, about 2.5 bytes a number): the
most numbers a body of its size can hold, so the growth per number (``growth_per_number``) is what
bounds a request's memory.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

from service.core.vocabulary import CROSS_ENTROPY_OUTPUTS

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _v2_binary_body(logits: np.ndarray, target: np.ndarray, outputs: list[str]) -> tuple[bytes, int]:
    """A /v2 request with binary tensors (Triton's extension): the JSON header, then the blobs."""
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "logits", "datatype": "FP64", "shape": list(logits.shape),
                 "parameters": {"binary_data_size": logits.nbytes}},
                {"name": "target", "datatype": "INT64", "shape": list(target.shape),
                 "parameters": {"binary_data_size": target.nbytes}},
            ],
            "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
        }
    )  # fmt: skip
    return header + logits.astype("<f8").tobytes() + target.astype("<i8").tobytes(), len(header)


def measure(
    rows: int,
    classes: int,
    outputs: list[str],
    *,
    at_limit: bool,
    dtype: str = "float64",
    v2_binary: bool = False,
    compact: bool = False,
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    document = {
        "logits": rng.integers(-9, 10, size=(rows, classes)) if compact else rng.normal(size=(rows, classes)),
        "target": rng.integers(0, classes, rows),
        "outputs": outputs,
        "dtype": dtype,
    }
    if v2_binary:
        body, header_length = _v2_binary_body(document["logits"], document["target"], outputs)
        path, headers = (
            "/v2/models/cross_entropy/infer",
            {"inference-header-content-length": str(header_length)},
        )
    else:
        body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
        path, headers = "/v1/cross-entropy", {"content-type": "application/json"}
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("XENT_")}
    env["XENT_LOG_LEVEL"] = "warning"
    if at_limit:
        env["XENT_MAX_BODY_BYTES"] = str(len(body))
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/health/ready", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        httpx.post(f"{url}/v1/cross-entropy", json={"logits": [[1, 2]], "target": [0]}, timeout=10)
        before = _kb(server.pid, "VmRSS")
        started = time.perf_counter()
        response = httpx.post(f"{url}{path}", content=body, headers=headers, timeout=300)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        peak = _kb(server.pid, "VmHWM")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    size = len(body) / 1024
    io = size + _outputs_bytes(rows, classes, outputs) / 1024
    return {
        "body_mb": size / 1024,
        "rss_before_mb": before / 1024,
        "peak_rss_mb": peak / 1024,
        "growth_over_body": (peak - before) / size,
        "growth_per_number": (peak - before) * 1024 / (rows * classes),
        "peak_over_body": peak / size,
        "round_trip_s": seconds,
        "response_mb": len(response.content) / 2**20,
        "outputs_mb": (io - size) / 1024,
        "peak_over_io": peak / io,
        "growth_over_io": (peak - before) / io,
    }


def _outputs_bytes(rows: int, classes: int, outputs: list[str]) -> int:
    """The outputs' own bytes: float64 / int64 arrays, (rows, classes) or (rows,) as the core says, or
    scalars (/v2's ``loss`` and ``count``)."""
    numbers = {"input": rows * classes, "batch": rows}
    infos = [CROSS_ENTROPY_OUTPUTS.get(name) for name in outputs]
    return sum(8 * (numbers[info.shape] if info is not None else 1) for info in infos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--outputs", default="losses,softmax")
    parser.add_argument("--at-limit", action="store_true", help="set XENT_MAX_BODY_BYTES to the body's size")
    parser.add_argument("--v2-binary", action="store_true", help="send it to /v2 as binary tensors")
    parser.add_argument("--compact", action="store_true", help="one-digit integer logits: dense JSON")
    args = parser.parse_args()
    result = measure(
        args.rows,
        args.classes,
        args.outputs.split(","),
        at_limit=args.at_limit,
        v2_binary=args.v2_binary,
        compact=args.compact,
    )
    for key, value in result.items():
        print(f"{key:>18}: {value:.2f}")


if __name__ == "__main__":
    main()

"""What a large /v2 request with binary tensors holds beyond its body and its answer (issue 18): its body
read into one buffer of its declared size, the softmax written over the logits read in place, the
answer sent a piece at a time. Measured with tracemalloc (NumPy reports its buffers to it)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from numpy.typing import NDArray
from starlette.types import Message

from service.api import routing
from service.api.arrays import ArrayLimits
from service.api.routing import RawBodyRoute
from service.api.v2 import registry
from service.api.v2.codec import decode_request, encode_response
from service.api.v2.encoding import BLOB_PIECE_BYTES
from service.api.v2.registry import MODELS, run
from service.core import cross_entropy
from service.core.kernels import BLOCK_ELEMENTS, get_threads
from service.core.vocabulary import CrossEntropyOutput

pytestmark = pytest.mark.anyio

MIB = 1 << 20
OUTPUTS: tuple[CrossEntropyOutput, ...] = ("losses", "softmax")


def _peak_traced(work: Callable[[], object]) -> int:
    """The most bytes allocated at once while ``work`` runs (what existed before is not counted)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_body_of_declared_length_is_read_into_one_buffer_of_that_size(app: FastAPI) -> None:
    route = next(route for route in app.routes if isinstance(route, RawBodyRoute))
    length, part = route.limits.max_body_bytes - 3, 16 * 1024
    source = np.random.default_rng(1).bytes(length)
    parts = [source[start : start + part] for start in range(0, length, part)]  # made beforehand

    def messages() -> Iterator[Message]:
        for index, chunk in enumerate(parts):
            yield {"type": "http.request", "body": chunk, "more_body": index < len(parts) - 1}

    pending = messages()

    async def receive() -> Message:
        return next(pending)

    share = route.limits.budget.reservation()
    await share.resize(length)  # as RawBodyRoute._serve reserves a large body's length before reading it
    tracemalloc.start()
    try:
        body = await route._read_body(receive, length, {"type": "http", "headers": []}, share)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        share.release()
    assert body == source
    # Appending to a growing bytearray over-allocated it by an eighth (and reallocated it as it grew).
    assert length <= peak < length + 2 * part


async def test_a_length_claimed_but_not_sent_costs_no_memory_outside_the_budget(app: FastAPI) -> None:
    """A small body (read without a share of the memory budget) is not made its claimed size before it
    arrives: four bytes of a claimed 60 KB, then silence, hold four bytes, not 60 KB."""
    route = next(route for route in app.routes if isinstance(route, RawBodyRoute))
    claimed = route.limits.offload_bytes - 1
    first: Message = {"type": "http.request", "body": b'{"lo', "more_body": True}
    messages = iter([first, {"type": "http.disconnect"}])

    async def receive() -> Message:
        return next(messages)

    tracemalloc.start()
    try:
        with pytest.raises(routing._Disconnected):
            await route._read_body(receive, claimed, {"type": "http", "headers": []})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < claimed // 4


def test_the_v2_binary_path_holds_one_piece_of_the_answer_beyond_the_body() -> None:
    """Body: 4096 x 1000 FP64 logits and INT64 targets, losses and softmax asked for as binary (the
    size of ``bench/memory.py --v2-binary``). Decoding, computing and sending them allocates no
    batch-sized array: the softmax is written over the logits in the body, and the answer goes out a
    piece at a time, each dropped once sent."""
    rows, classes = 4096, 1000
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(rows, classes))
    target = rng.integers(0, classes, rows)
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "logits", "datatype": "FP64", "shape": [rows, classes],
                 "parameters": {"binary_data_size": logits.nbytes}},
                {"name": "target", "datatype": "INT64", "shape": [rows],
                 "parameters": {"binary_data_size": target.nbytes}},
            ],
            "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in OUTPUTS],
        }
    )  # fmt: skip
    header += b" " * (-len(header) % 8)  # the blobs aligned in the body: read in place
    body = bytearray(header + logits.tobytes() + target.tobytes())
    limits = ArrayLimits(max_elements=rows * classes)
    digest = hashlib.sha256()
    answer_header: list[bytes] = []

    def serve() -> None:
        request = decode_request(body, len(header), limits, writable=True)
        outputs = run(MODELS["cross_entropy"], request)
        encoded = encode_response(
            model_name="cross_entropy", model_version="1", request_id=None, outputs=outputs
        )
        del request, outputs
        assert encoded.chunks is not None
        for piece in encoded.chunks:
            if not answer_header:
                answer_header.append(piece)
            digest.update(piece)
            del piece

    peak = _peak_traced(serve)
    softmax_bytes = rows * classes * 8
    scratch = 2 * BLOCK_ELEMENTS * 8 * get_threads()  # the softmax pass's two block buffers, per thread
    assert peak < BLOB_PIECE_BYTES + scratch + 2 * MIB < softmax_bytes / 2
    # And the answer is /v1's computation to the bit, sent from where the logits were.
    expected = cross_entropy(logits, target, outputs=list(OUTPUTS))
    assert expected.losses is not None and expected.softmax is not None
    outputs = orjson.loads(answer_header[0])["outputs"]
    assert [output["name"] for output in outputs] == list(OUTPUTS)
    whole = (
        answer_header[0] + expected.losses.astype("<f8").tobytes() + expected.softmax.astype("<f8").tobytes()
    )
    assert digest.hexdigest() == hashlib.sha256(whole).hexdigest()
    softmax = np.frombuffer(body, dtype="<f8", count=rows * classes, offset=len(header))
    np.testing.assert_array_equal(softmax, expected.softmax.reshape(-1))


def _root(array: NDArray[Any]) -> object:
    """What an array's memory finally belongs to: an array that owns it, or a buffer."""
    base: object = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


@pytest.mark.parametrize("misaligned_by", [0, 3, 4], ids=lambda n: f"header length 8k+{n}")
async def test_the_route_gives_its_body_up_to_the_model_with_the_blobs_aligned(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, misaligned_by: int
) -> None:
    """The route's part of the above: the logits reach the core as a writable view of the body, given
    up (a read-only array is never written over: tests/unit/test_spare_scores.py), whatever the JSON
    header's length: the body is read so that its blobs start aligned for FP64, not copied."""
    seen: list[tuple[bool, bool, bool]] = []

    def spy(scores: NDArray[Any], *args: Any, **kwargs: Any) -> Any:
        in_place = isinstance(_root(scores), bytearray | memoryview)
        seen.append((scores.flags.writeable, kwargs["overwrite_scores"], in_place))
        return cross_entropy(scores, *args, **kwargs)

    monkeypatch.setattr(registry, "cross_entropy", spy)
    logits = np.random.default_rng(3).normal(size=(8, 16))
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "logits", "datatype": "FP64", "shape": [8, 16],
                 "parameters": {"binary_data_size": logits.nbytes}},
                {"name": "target", "datatype": "INT64", "shape": [8], "data": list(range(8))},
            ]
        }
    )  # fmt: skip
    header += b" " * (-len(header) % 8 + misaligned_by)
    response = await client.post(
        "/v2/models/cross_entropy/infer",
        content=header + logits.tobytes(),
        headers={"inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert seen == [(True, True, True)]
    expected = cross_entropy(logits, np.arange(8))
    assert expected.loss is not None
    assert response.json()["outputs"][0]["data"] == [float(expected.loss)]

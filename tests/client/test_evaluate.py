"""``evaluate``: any input, cut into requests, combined into exactly the single request's mean."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.live import LiveServer
from xent_client import AsyncClient, Client, XentError

ROWS, CLASSES = 6000, 7


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(14)
    logits = rng.normal(scale=3, size=(ROWS, CLASSES))
    target = rng.integers(0, CLASSES, ROWS)
    target[rng.random(ROWS) < 0.1] = 3  # ignored below, with ignore_index=3
    return {"logits": logits, "target": target, "weight": rng.uniform(0.2, 3.0, CLASSES)}


OPTIONS = [
    {},
    {"weight": True},
    {"weight": True, "ignore_index": 3},
    {"weight": True, "ignore_index": 3, "label_smoothing": 0.15},
    {"label_smoothing": 0.3, "ignore_index": 3},
]


def options_of(spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "weight": data["weight"]} if spec.get("weight") else dict(spec)


@pytest.mark.parametrize("spec", OPTIONS, ids=lambda spec: ",".join(spec) or "plain")
def test_many_requests_give_the_single_requests_mean(
    client: Client, data: dict[str, Any], spec: dict[str, Any]
) -> None:
    options = options_of(spec, data)
    single = client.cross_entropy(
        logits=data["logits"], target=data["target"], outputs=["losses"], transport="binary", **options
    )
    result = client.evaluate(
        data["logits"], data["target"], request_bytes=40_000, concurrency=3, return_losses=True, **options
    )
    assert result.requests >= 10 and result.rows == ROWS
    assert single.loss is not None and result.loss is not None
    assert abs(result.loss - single.loss) <= 1e-12 * abs(single.loss)
    assert result.count == single.count
    assert result.losses is not None and single.losses is not None
    # In input order; the core's kernels depend on the batch size, hence a last-bit difference.
    np.testing.assert_allclose(result.losses, single.losses, rtol=1e-14, atol=0)


def test_averaging_the_averages_would_be_wrong(client: Client, data: dict[str, Any]) -> None:
    """The check above can fail: with class weights and ignored targets, the mean of the requests'
    means is far from the true mean, which evaluate gets."""
    options = {"weight": data["weight"], "ignore_index": 3}
    cut = 1000
    means = [
        client.cross_entropy(
            logits=data["logits"][a : a + cut], target=data["target"][a : a + cut], **options
        )
        for a in (0, cut)
    ]
    naive = np.mean([m.loss for m in means])
    true = client.evaluate(data["logits"][: 2 * cut], data["target"][: 2 * cut], **options)
    single = client.cross_entropy(
        logits=data["logits"][: 2 * cut], target=data["target"][: 2 * cut], **options
    )
    assert true.loss == pytest.approx(single.loss, rel=1e-12)
    assert naive != pytest.approx(single.loss, rel=1e-6)


def test_iterable_of_batches_json_transport_and_soft_targets(client: Client, data: dict[str, Any]) -> None:
    logits, target = data["logits"][:900], data["target"][:900]
    single = client.cross_entropy(logits=logits, target=target, label_smoothing=0.1)
    batches = ((logits[a : a + 250], target[a : a + 250]) for a in range(0, 900, 250))
    by_batches = client.evaluate(batches, label_smoothing=0.1, request_bytes=20_000, return_losses=True)
    assert by_batches.loss == pytest.approx(single.loss, rel=1e-12)
    assert by_batches.losses is not None and by_batches.losses.shape == (900,)
    as_json = client.evaluate(logits, target, label_smoothing=0.1, transport="json", request_bytes=30_000)
    assert as_json.requests > 1 and as_json.loss == pytest.approx(single.loss, rel=1e-12)
    soft = np.eye(CLASSES)[target] * 0.8 + 0.2 / CLASSES
    soft_single = client.cross_entropy(logits=logits, target=soft, weight=data["weight"])
    soft_many = client.evaluate(logits, soft, weight=data["weight"], request_bytes=20_000)
    assert soft_many.requests > 1 and soft_many.loss == pytest.approx(soft_single.loss, rel=1e-12)


def test_probabilities_float32_and_a_memmap(client: Client, data: dict[str, Any], tmp_path: Path) -> None:
    logits = data["logits"][:2000]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    path = tmp_path / "p.npy"
    np.save(path, probabilities.astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    target = data["target"][:2000]
    single = client.cross_entropy(probabilities=mapped, target=target, dtype="float32", transport="binary")
    many = client.evaluate(mapped, target, kind="probabilities", dtype="float32", request_bytes=9000)
    assert many.requests > 1 and single.loss is not None and many.loss is not None
    # float32 sums, added in float64: within float32's precision of the single request.
    assert many.loss == pytest.approx(single.loss, rel=1e-6)


def test_every_target_ignored_gives_none_as_pytorch_gives_nan(client: Client) -> None:
    result = client.evaluate(np.zeros((10, 3)), np.full(10, -100), request_bytes=5000)
    assert result.loss is None and result.count == 0


@pytest.mark.anyio
async def test_async_evaluate(live_server: LiveServer, data: dict[str, Any]) -> None:
    options = {"weight": data["weight"], "ignore_index": 3, "label_smoothing": 0.15}
    async with AsyncClient(live_server.url) as aclient:
        single = await aclient.cross_entropy(logits=data["logits"], target=data["target"], **options)
        result = await aclient.evaluate(
            data["logits"], data["target"], request_bytes=40_000, concurrency=4, return_losses=True, **options
        )
    assert single.loss is not None and result.requests >= 10
    assert result.loss == pytest.approx(single.loss, rel=1e-12)


def test_progress_bar_only_when_asked(
    client: Client, data: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    client.evaluate(data["logits"], data["target"], request_bytes=40_000, progress=True)
    assert "rows" in capsys.readouterr().err
    client.evaluate(data["logits"], data["target"], request_bytes=40_000)  # stderr is not a terminal here
    client.evaluate(data["logits"], data["target"], request_bytes=40_000, progress=False)
    assert capsys.readouterr().err == ""


def test_bad_evaluate_input_is_a_clear_error(client: Client) -> None:
    with pytest.raises(XentError, match="needs batched input"):
        client.evaluate(np.zeros(5), np.zeros(5, dtype=int))
    with pytest.raises(XentError, match="does not fit a request"):
        client.evaluate(np.zeros((2, 100_000)), np.zeros(2, dtype=int), request_bytes=100_000)
    with pytest.raises(XentError, match="needs target="):
        client.evaluate(np.zeros((2, 3)))


def test_losses_written_to_a_file(client: Client, data: dict[str, Any], tmp_path: Path) -> None:
    logits, target = data["logits"], data["target"]
    in_memory = client.evaluate(logits, target, request_bytes=40_000, return_losses=True)
    mapped = client.evaluate(logits, target, request_bytes=40_000, losses_path=tmp_path / "a.npy")
    assert isinstance(mapped.losses, np.memmap)  # written to the file as the answers come, not held
    batches = ((logits[a : a + 1000], target[a : a + 1000]) for a in range(0, ROWS, 1000))
    client.evaluate(batches, request_bytes=40_000, losses_path=tmp_path / "b.npy")
    assert in_memory.losses is not None
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), in_memory.losses)  # the same requests
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), in_memory.losses, rtol=1e-14, atol=0)


def test_client_memory_does_not_grow_with_the_input(client: Client, tmp_path: Path) -> None:
    """tracemalloc's peak (NumPy's buffers included) over a float32 memory map evaluated in float64,
    so that every request makes one body-sized array: at most `concurrency` in flight and the one
    being built, for 4 times the rows as for 1."""
    rng = np.random.default_rng(3)
    peaks = []
    for rows in (50_000, 200_000):
        path = tmp_path / f"logits-{rows}.npy"
        np.save(path, rng.normal(size=(rows, 10)).astype(np.float32))
        logits, target = np.load(path, mmap_mode="r"), rng.integers(0, 10, rows)
        tracemalloc.start()
        try:
            result = client.evaluate(logits, target, concurrency=2, request_bytes=1 << 20)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.rows == rows and result.requests >= 4
        peaks.append(peak / result.largest_request)
    print(f"client peak in request bodies: {peaks}")
    assert max(peaks) <= 3, f"peak in request bodies: {peaks}"
    assert abs(peaks[1] - peaks[0]) < 0.5, f"peak in request bodies: {peaks}"

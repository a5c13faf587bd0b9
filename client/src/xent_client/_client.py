"""``Client`` and ``AsyncClient``: one method per endpoint, retries, and ``evaluate`` at any size.

Both wrap one ``httpx`` client (connection pooling, keep-alive) and share everything but the waiting:
requests are built by ``_transport.prepare``, answers read by ``_transport.decode``, errors by
``ProblemError.from_response``, retry decisions by ``_retry``, and ``evaluate``'s cutting and exact
combining by ``_evaluate.Plan``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import httpx
import numpy as np
from numpy.typing import ArrayLike

from xent_client._errors import ProblemError, ServiceUnavailableError, TransportError, XentError
from xent_client._evaluate import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ELEMENTS,
    REQUEST_BYTES,
    Chunk,
    EvaluateResult,
    InputKind,
    Plan,
    as_batches,
)
from xent_client._results import (
    BinaryCrossEntropyResult,
    CrossEntropyResult,
    DivergenceResult,
    FocalLossResult,
    SoftmaxResult,
)
from xent_client._retry import RETRY_STATUSES, retryable_error, wait_before_retry
from xent_client._transport import ENDPOINTS, Prepared, Transport, decode, prepare

__all__ = ["AsyncClient", "Client"]

Dtype = Literal["float64", "float32"]
Reduction = Literal["mean", "sum", "none"]
Batches = Iterable[tuple[ArrayLike, ArrayLike]]


class _Progress(Protocol):
    def update(self, n: int) -> object: ...
    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> object:
        return None

    def close(self) -> None:
        return None


def _progress(show: bool | None, total: int | None) -> _Progress:
    """A tqdm bar on stderr when asked (``True``), or by default when stderr is a terminal."""
    if not (show or (show is None and sys.stderr.isatty())):
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        if show:
            raise XentError("the progress bar needs tqdm: pip install 'xent-client[progress]'") from None
        return _NoProgress()  # a terminal, but no tqdm: no bar rather than an error
    bar: _Progress = tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr, desc="evaluate")
    return bar


class _Base:
    def __init__(
        self,
        *,
        api_key: str | None,
        retries: int,
        backoff: float,
        transport: Transport,
        max_body_bytes: int,
        max_elements: int,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.retries = retries
        self.backoff = backoff
        self.transport: Transport = transport
        self.max_body_bytes = max_body_bytes
        self.max_elements = max_elements
        self._headers = {"accept": "application/json, application/problem+json, application/octet-stream"}
        if api_key is not None:
            self._headers["authorization"] = f"Bearer {api_key}"

    def _transport(self, transport: Transport | None) -> Transport:
        return self.transport if transport is None else transport

    def _plan(
        self,
        kind: InputKind,
        weight: ArrayLike | None,
        ignore_index: int | None,
        label_smoothing: float | None,
        epsilon: float | None,
        dtype: Dtype,
        transport: Transport | None,
        request_bytes: int | None,
        return_losses: bool,
        total_rows: int | None,
        losses_path: str | os.PathLike[str] | None,
    ) -> Plan:
        budget = min(REQUEST_BYTES if request_bytes is None else request_bytes, self.max_body_bytes)
        return Plan(
            kind=kind,
            weight=None if weight is None else np.asarray(weight, dtype=np.float64),
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            epsilon=epsilon,
            dtype=dtype,
            transport=self._transport(transport),
            request_bytes=budget,
            max_elements=self.max_elements,
            return_losses=return_losses,
            total_rows=total_rows,
            losses_path=None if losses_path is None else Path(losses_path),
        )

    @staticmethod
    def _failure(error: httpx.TransportError, url: str) -> TransportError:
        reason = str(error) or type(error).__name__
        return TransportError(f"cannot reach the service at {url}: {reason}", url=url)

    @staticmethod
    def _problem(response: httpx.Response) -> ProblemError:
        problem = ProblemError.from_response(response)
        if response.status_code in RETRY_STATUSES:
            return ServiceUnavailableError(
                problem.status,
                type=problem.type,
                title=problem.title,
                detail=problem.detail,
                errors=problem.errors,
                request_id=problem.request_id,
            )
        return problem


# The request methods of both clients take the same arguments; their docstrings are Client's.


class Client(_Base):
    """A client of the cross-entropy service, for use in one thread or many.

    ``Client("http://127.0.0.1:8000")``; ``api_key`` is sent as ``Authorization: Bearer``;
    ``timeout`` (seconds) bounds connecting and each read and write; ``retries`` is how many times a
    request is sent again after a connection failure or a 408, 429, 502, 503 or 504 (waiting
    ``backoff * 2**n`` seconds with jitter, or what ``Retry-After`` asks); ``transport`` is "auto"
    (JSON for small inputs, binary tensors for large), "json" or "binary". ``max_body_bytes`` and
    ``max_elements`` are the server's XENT_MAX_BODY_BYTES and XENT_MAX_ELEMENTS (the service does
    not publish them; the defaults are its defaults): ``evaluate`` keeps its requests within them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: Transport = "auto",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            retries=retries,
            backoff=backoff,
            transport=transport,
            max_body_bytes=max_body_bytes,
            max_elements=max_elements,
        )
        self._http = http or httpx.Client(
            base_url=base_url, timeout=timeout, limits=httpx.Limits(max_connections=64)
        )
        self.base_url = str(self._http.base_url)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, prepared: Prepared) -> dict[str, Any]:
        """Send a prepared request (retrying as configured) and decode its answer."""
        attempt = 0
        while True:
            retry_after: str | None = None
            try:
                response = self._http.post(
                    prepared.path,
                    content=prepared.content(),
                    headers={**self._headers, **prepared.headers, "content-length": str(prepared.length)},
                )
            except httpx.TransportError as error:
                if attempt >= self.retries or not retryable_error(error):
                    raise self._failure(error, self.base_url) from error
            else:
                if response.is_success:
                    return decode(prepared, response)
                if attempt >= self.retries or response.status_code not in RETRY_STATUSES:
                    raise self._problem(response)
                retry_after = response.headers.get("retry-after")
            time.sleep(wait_before_retry(attempt, self.backoff, retry_after))
            attempt += 1

    def cross_entropy(
        self,
        *,
        logits: ArrayLike | None = None,
        probabilities: ArrayLike | None = None,
        log_probabilities: ArrayLike | None = None,
        target: ArrayLike,
        weight: ArrayLike | None = None,
        ignore_index: int | None = None,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
        sample_weight: ArrayLike | None = None,
        top_k: int | None = None,
        calibration_bins: int | None = None,
    ) -> CrossEntropyResult:
        """``POST /v1/cross-entropy``: PyTorch's ``cross_entropy`` (one of logits, probabilities,
        log_probabilities). Options left None take the service's defaults."""
        prepared = prepare(
            ENDPOINTS["cross_entropy"],
            {
                "logits": logits,
                "probabilities": probabilities,
                "log_probabilities": log_probabilities,
                "target": target,
                "weight": weight,
                "sample_weight": sample_weight,
            },
            {
                "ignore_index": ignore_index,
                "reduction": reduction,
                "label_smoothing": label_smoothing,
                "epsilon": epsilon,
                "dtype": dtype,
                "top_k": top_k,
                "calibration_bins": calibration_bins,
            },
            outputs,
            self._transport(transport),
        )
        return CrossEntropyResult.from_fields(self.send(prepared))

    def binary_cross_entropy(
        self,
        *,
        logits: ArrayLike | None = None,
        probabilities: ArrayLike | None = None,
        target: ArrayLike,
        weight: ArrayLike | None = None,
        pos_weight: ArrayLike | None = None,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
        sample_weight: ArrayLike | None = None,
        threshold: float | None = None,
    ) -> BinaryCrossEntropyResult:
        """``POST /v1/binary-cross-entropy``: ``BCEWithLogitsLoss`` (logits) or ``BCELoss``."""
        prepared = prepare(
            ENDPOINTS["binary_cross_entropy"],
            {
                "logits": logits,
                "probabilities": probabilities,
                "target": target,
                "weight": weight,
                "pos_weight": pos_weight,
                "sample_weight": sample_weight,
            },
            {
                "reduction": reduction,
                "label_smoothing": label_smoothing,
                "epsilon": epsilon,
                "dtype": dtype,
                "threshold": threshold,
            },
            outputs,
            self._transport(transport),
        )
        return BinaryCrossEntropyResult.from_fields(self.send(prepared))

    def softmax(
        self,
        *,
        logits: ArrayLike,
        temperature: float | None = None,
        dim: int | None = None,
        dtype: Dtype | None = None,
        transport: Transport | None = None,
    ) -> SoftmaxResult:
        """``POST /v1/softmax``: softmax and log-softmax of ``logits / temperature`` along ``dim``."""
        prepared = prepare(
            ENDPOINTS["softmax"],
            {"logits": logits},
            {"temperature": temperature, "dim": dim, "dtype": dtype},
            None,
            self._transport(transport),
        )
        return SoftmaxResult.from_fields(self.send(prepared))

    def divergence(
        self,
        *,
        p: ArrayLike,
        q: ArrayLike,
        base: Literal["e", "2", "10"] | None = None,
        reduction: Reduction | None = None,
        epsilon: float | None = None,
        transport: Transport | None = None,
    ) -> DivergenceResult:
        """``POST /v1/divergence``: H(p, q), H(p) and KL(p || q)."""
        prepared = prepare(
            ENDPOINTS["divergence"],
            {"p": p, "q": q},
            {"base": base, "reduction": reduction, "epsilon": epsilon},
            None,
            self._transport(transport),
        )
        return DivergenceResult.from_fields(self.send(prepared))

    def focal_loss(
        self,
        *,
        logits: ArrayLike,
        target: ArrayLike,
        gamma: float | None = None,
        alpha: ArrayLike | None = None,
        ignore_index: int | None = None,
        reduction: Reduction | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
    ) -> FocalLossResult:
        """``POST /v1/focal-loss``: the sigmoid form (``target`` of the logits' shape, ``alpha`` one
        number) or the softmax form (class indices, ``alpha`` C class weights). Always sent as JSON:
        the service has no /v2 model for it, so ``transport="binary"`` raises ``XentError``."""
        prepared = prepare(
            ENDPOINTS["focal_loss"],
            {"logits": logits, "target": target, "alpha": alpha},
            {"gamma": gamma, "ignore_index": ignore_index, "reduction": reduction, "dtype": dtype},
            outputs,
            self._transport(transport),
        )
        return FocalLossResult.from_fields(self.send(prepared))

    def evaluate(
        self,
        predictions: ArrayLike | Batches,
        target: ArrayLike | None = None,
        *,
        kind: InputKind = "logits",
        weight: ArrayLike | None = None,
        ignore_index: int | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype = "float64",
        concurrency: int = 4,
        return_losses: bool = False,
        losses_path: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        transport: Transport | None = None,
        request_bytes: int | None = None,
        sample_weight: ArrayLike | None = None,
        metrics: Sequence[str] = (),
        top_k: int | None = None,
        calibration_bins: int | None = None,
    ) -> EvaluateResult:
        """The mean cross-entropy over ``predictions`` (an array or ``numpy.memmap`` of shape (N, C,
        ...) with ``target``, or an iterable of ``(predictions, target)`` batches), exactly as one
        request would give it, however large: cut into requests of at most ``request_bytes`` (4 MiB by
        default), ``concurrency`` of them in flight; ``return_losses`` gives the per-sample losses in
        input order, ``losses_path`` writes them to a .npy file instead of memory (a memory map, for an
        array input); ``progress`` shows a bar on stderr (default: when stderr is a terminal).
        ``sample_weight`` (one per target of an array input) weighs the mean as the service does;
        ``metrics`` (any of ``METRICS``, with ``top_k`` and ``calibration_bins``) are combined exactly
        across the requests (see ``xent_client._evaluate``)."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        batches, total = as_batches(predictions, target)
        plan = self._plan(
            kind, weight, ignore_index, label_smoothing, epsilon, dtype, transport, request_bytes,
            return_losses, total, losses_path,
        )  # fmt: skip
        plan.metered(sample_weight, metrics, top_k, calibration_bins, array_input=target is not None)
        bar = _progress(progress, total)
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="xent-evaluate")
        pending: set[Future[tuple[Chunk, dict[str, Any]]]] = set()

        def post(chunk: Chunk, prepared: Prepared) -> tuple[Chunk, dict[str, Any]]:
            return chunk, self.send(prepared)

        def settle(done: Iterable[Future[tuple[Chunk, dict[str, Any]]]]) -> None:
            for future in done:
                chunk, answer = future.result()
                plan.add(chunk, answer)
                bar.update(len(chunk.target))

        try:
            for chunk in plan.chunks(batches):
                # At most `concurrency` bodies in flight, and this one being built.
                prepared = plan.prepare(chunk)
                while len(pending) >= concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    settle(done)
                pending.add(pool.submit(post, chunk, prepared))
                del prepared
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return plan.result()


class AsyncClient(_Base):
    """``Client``'s asynchronous twin, on ``httpx.AsyncClient``: the same arguments and methods,
    awaited (``async with AsyncClient(url) as client: await client.cross_entropy(...)``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: Transport = "auto",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            retries=retries,
            backoff=backoff,
            transport=transport,
            max_body_bytes=max_body_bytes,
            max_elements=max_elements,
        )
        self._http = http or httpx.AsyncClient(
            base_url=base_url, timeout=timeout, limits=httpx.Limits(max_connections=64)
        )
        self.base_url = str(self._http.base_url)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, prepared: Prepared) -> dict[str, Any]:
        """Send a prepared request (retrying as configured) and decode its answer."""
        attempt = 0
        while True:
            retry_after: str | None = None
            try:
                response = await self._http.post(
                    prepared.path,
                    content=prepared.acontent(),
                    headers={**self._headers, **prepared.headers, "content-length": str(prepared.length)},
                )
            except httpx.TransportError as error:
                if attempt >= self.retries or not retryable_error(error):
                    raise self._failure(error, self.base_url) from error
            else:
                if response.is_success:
                    return decode(prepared, response)
                if attempt >= self.retries or response.status_code not in RETRY_STATUSES:
                    raise self._problem(response)
                retry_after = response.headers.get("retry-after")
            await asyncio.sleep(wait_before_retry(attempt, self.backoff, retry_after))
            attempt += 1

    async def cross_entropy(
        self,
        *,
        logits: ArrayLike | None = None,
        probabilities: ArrayLike | None = None,
        log_probabilities: ArrayLike | None = None,
        target: ArrayLike,
        weight: ArrayLike | None = None,
        ignore_index: int | None = None,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
        sample_weight: ArrayLike | None = None,
        top_k: int | None = None,
        calibration_bins: int | None = None,
    ) -> CrossEntropyResult:
        """See ``Client.cross_entropy``."""
        prepared = prepare(
            ENDPOINTS["cross_entropy"],
            {
                "logits": logits,
                "probabilities": probabilities,
                "log_probabilities": log_probabilities,
                "target": target,
                "weight": weight,
                "sample_weight": sample_weight,
            },
            {
                "ignore_index": ignore_index,
                "reduction": reduction,
                "label_smoothing": label_smoothing,
                "epsilon": epsilon,
                "dtype": dtype,
                "top_k": top_k,
                "calibration_bins": calibration_bins,
            },
            outputs,
            self._transport(transport),
        )
        return CrossEntropyResult.from_fields(await self.send(prepared))

    async def binary_cross_entropy(
        self,
        *,
        logits: ArrayLike | None = None,
        probabilities: ArrayLike | None = None,
        target: ArrayLike,
        weight: ArrayLike | None = None,
        pos_weight: ArrayLike | None = None,
        reduction: Reduction | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
        sample_weight: ArrayLike | None = None,
        threshold: float | None = None,
    ) -> BinaryCrossEntropyResult:
        """See ``Client.binary_cross_entropy``."""
        prepared = prepare(
            ENDPOINTS["binary_cross_entropy"],
            {
                "logits": logits,
                "probabilities": probabilities,
                "target": target,
                "weight": weight,
                "pos_weight": pos_weight,
                "sample_weight": sample_weight,
            },
            {
                "reduction": reduction,
                "label_smoothing": label_smoothing,
                "epsilon": epsilon,
                "dtype": dtype,
                "threshold": threshold,
            },
            outputs,
            self._transport(transport),
        )
        return BinaryCrossEntropyResult.from_fields(await self.send(prepared))

    async def softmax(
        self,
        *,
        logits: ArrayLike,
        temperature: float | None = None,
        dim: int | None = None,
        dtype: Dtype | None = None,
        transport: Transport | None = None,
    ) -> SoftmaxResult:
        """See ``Client.softmax``."""
        prepared = prepare(
            ENDPOINTS["softmax"],
            {"logits": logits},
            {"temperature": temperature, "dim": dim, "dtype": dtype},
            None,
            self._transport(transport),
        )
        return SoftmaxResult.from_fields(await self.send(prepared))

    async def divergence(
        self,
        *,
        p: ArrayLike,
        q: ArrayLike,
        base: Literal["e", "2", "10"] | None = None,
        reduction: Reduction | None = None,
        epsilon: float | None = None,
        transport: Transport | None = None,
    ) -> DivergenceResult:
        """See ``Client.divergence``."""
        prepared = prepare(
            ENDPOINTS["divergence"],
            {"p": p, "q": q},
            {"base": base, "reduction": reduction, "epsilon": epsilon},
            None,
            self._transport(transport),
        )
        return DivergenceResult.from_fields(await self.send(prepared))

    async def focal_loss(
        self,
        *,
        logits: ArrayLike,
        target: ArrayLike,
        gamma: float | None = None,
        alpha: ArrayLike | None = None,
        ignore_index: int | None = None,
        reduction: Reduction | None = None,
        dtype: Dtype | None = None,
        outputs: Sequence[str] | None = None,
        transport: Transport | None = None,
    ) -> FocalLossResult:
        """See ``Client.focal_loss``."""
        prepared = prepare(
            ENDPOINTS["focal_loss"],
            {"logits": logits, "target": target, "alpha": alpha},
            {"gamma": gamma, "ignore_index": ignore_index, "reduction": reduction, "dtype": dtype},
            outputs,
            self._transport(transport),
        )
        return FocalLossResult.from_fields(await self.send(prepared))

    async def evaluate(
        self,
        predictions: ArrayLike | Batches,
        target: ArrayLike | None = None,
        *,
        kind: InputKind = "logits",
        weight: ArrayLike | None = None,
        ignore_index: int | None = None,
        label_smoothing: float | None = None,
        epsilon: float | None = None,
        dtype: Dtype = "float64",
        concurrency: int = 4,
        return_losses: bool = False,
        losses_path: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        transport: Transport | None = None,
        request_bytes: int | None = None,
        sample_weight: ArrayLike | None = None,
        metrics: Sequence[str] = (),
        top_k: int | None = None,
        calibration_bins: int | None = None,
    ) -> EvaluateResult:
        """See ``Client.evaluate``."""
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        batches, total = as_batches(predictions, target)
        plan = self._plan(
            kind, weight, ignore_index, label_smoothing, epsilon, dtype, transport, request_bytes,
            return_losses, total, losses_path,
        )  # fmt: skip
        plan.metered(sample_weight, metrics, top_k, calibration_bins, array_input=target is not None)
        bar = _progress(progress, total)
        pending: set[asyncio.Task[tuple[Chunk, dict[str, Any]]]] = set()

        async def post(chunk: Chunk, prepared: Prepared) -> tuple[Chunk, dict[str, Any]]:
            return chunk, await self.send(prepared)

        def settle(done: Iterable[asyncio.Task[tuple[Chunk, dict[str, Any]]]]) -> None:
            for task in done:
                chunk, answer = task.result()
                plan.add(chunk, answer)
                bar.update(len(chunk.target))

        try:
            for chunk in plan.chunks(batches):
                prepared = plan.prepare(chunk)
                while len(pending) >= concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    settle(done)
                pending.add(asyncio.create_task(post(chunk, prepared)))
                del prepared
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                settle(done)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            bar.close()
        return plan.result()

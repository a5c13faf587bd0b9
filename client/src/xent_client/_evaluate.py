"""The loss over inputs of any size: split into requests, combined exactly.

Each request asks the service for the *sum* of its rows' losses (reduction "sum", which includes the
class weights and label smoothing exactly as PyTorch's) and their ``count``. PyTorch's mean is

    loss = sum_i l_i / D,   D = sum_i w[y_i] over the targets not ignored   (class weights, index targets)
                            D = count                                        (otherwise)

where l_i already carries w[y_i]; with label smoothing and class weights the smoothing term is
divided by the same D (PyTorch normalises it "to be consistent with nll_loss"). So the mean of the
whole input is the total of the requests' sums over the total of their denominators, never a mean of
means: the client adds the sums and the denominators (float64, in input order) and divides once. D
with class weights is computed here from the targets and weights each request sent, in float64 as
the service does; the relative difference from one single request is the rounding of the additions,
about 1e-16 per request.

With ``sample_weight`` (one per row, scikit-learn's convention) each request asks for the weighted sum
``sum_i v_i l_i``, and ``D`` becomes ``sum_i v_i w[y_i]`` (or ``sum_i v_i``), computed here the same way.

The metrics (``metrics=``) are combined from counts and sums, never from averages of averages: each
request's ``accuracy``, ``top_k_accuracy`` and ``brier_score`` is a weighted mean over its counted rows
with denominator ``U = sum_i v_i`` over the targets not ignored, which the client computes from what it
sent; it adds ``metric * U`` and ``U`` and divides once. ``calibration``'s bins come back as sums
(``count``, ``weight``, ``confidence_sum``, ``correct_weight``), which are added bin by bin; the
expected calibration error is computed once from the totals. ``perplexity`` is ``exp`` of the combined
mean loss; ``entropy`` is per row, in input order. The metrics are /v1 outputs only, so a request that
asks for them is sent as JSON.

Rows per request: as many as fit ``request_bytes`` (default ``REQUEST_BYTES``, at most the server's
``max_body_bytes``) and the server's ``max_elements`` per array. The service does not publish its
limits, so both are parameters with the service's defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from numpy.lib.format import open_memmap
from numpy.typing import ArrayLike, NDArray

from xent_client._errors import XentError
from xent_client._transport import ENDPOINTS, JSON_MAX_NUMBERS, Prepared, Transport, prepare

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "METRICS",
    "REQUEST_BYTES",
    "Chunk",
    "EvaluateResult",
    "MetricTotals",
    "Plan",
]

#: The service's defaults for XENT_MAX_BODY_BYTES and XENT_MAX_ELEMENTS.
DEFAULT_MAX_BODY_BYTES: Final = 128 * 1024 * 1024
DEFAULT_MAX_ELEMENTS: Final = 16 * 1024 * 1024
#: Bytes of one request of `evaluate` by default: in bench/client.py, 4 MiB requests at concurrency 4
#: were as fast as or faster than 0.25, 1 and 16 MiB ones (the service computes one while the next
#: arrives; smaller ones pay more per request, larger ones overlap less).
REQUEST_BYTES: Final = 4 * 1024 * 1024
#: Room left for the JSON header of a binary request.
_HEADER_ROOM: Final = 4096
#: The most bytes one number takes as JSON ("-1.2345678901234567e-100,"), and a row's brackets.
_JSON_NUMBER_BYTES: Final = 26
_JSON_ROW_BYTES: Final = 4

InputKind = Literal["logits", "probabilities", "log_probabilities"]


#: The metrics that are weighted means over the counted rows.
_MEAN_METRICS: Final = ("accuracy", "top_k_accuracy", "brier_score")
#: The calibration bins' sums, added across requests.
_BIN_SUMS: Final = ("count", "weight", "confidence_sum", "correct_weight")
METRICS: Final = ("accuracy", "top_k_accuracy", "perplexity", "entropy", "brier_score", "calibration")


@dataclass(frozen=True, slots=True)
class EvaluateResult:
    """``loss`` is the mean (None where PyTorch's is NaN: no target counted, or their weights sum to
    0), ``loss_sum`` the sum; ``count`` the targets not ignored, ``weight_sum`` the mean's
    denominator; ``losses`` the per-sample losses in input order when asked for."""

    loss: float | None
    loss_sum: float
    count: int
    weight_sum: float
    rows: int
    requests: int
    seconds: float
    #: The largest request body sent, in bytes.
    largest_request: int = 0
    losses: NDArray[np.floating[Any]] | None = None
    #: The metrics asked for (None when not asked, or when no weight was counted).
    accuracy: float | None = None
    top_k_accuracy: float | None = None
    perplexity: float | None = None
    brier_score: float | None = None
    entropy: NDArray[np.floating[Any]] | None = None
    #: ``ece``, ``edges`` and per bin ``count``, ``weight``, ``confidence_sum``, ``correct_weight``,
    #: ``confidence`` and ``accuracy`` (NaN for an empty bin), as the service's.
    calibration: dict[str, Any] | None = None


@dataclass
class MetricTotals:
    """The metrics' running sums (see the module docstring)."""

    names: tuple[str, ...] = ()
    weight: float = 0.0
    sums: dict[str, float] = field(default_factory=dict)
    bins: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    edges: list[float] | None = None
    entropy: dict[int, NDArray[np.floating[Any]]] = field(default_factory=dict)

    def add(self, index: int, answer: dict[str, Any], counted_weight: float) -> None:
        self.weight += counted_weight
        for name in _MEAN_METRICS:
            value = answer.get(name)
            if name in self.names and value is not None:
                self.sums[name] = self.sums.get(name, 0.0) + float(value) * counted_weight
        calibration = answer.get("calibration")
        if calibration is not None:
            self.edges = list(calibration["edges"])
            for key in _BIN_SUMS:
                values = np.asarray(calibration[key], dtype=np.float64)
                self.bins[key] = self.bins[key] + values if key in self.bins else values
        if answer.get("entropy") is not None:
            self.entropy[index] = np.asarray(answer["entropy"])

    def result(self, mean_loss: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        defined = self.weight > 0
        for name in _MEAN_METRICS:
            if name in self.names:
                out[name] = self.sums.get(name, 0.0) / self.weight if defined else None
        if "perplexity" in self.names:
            out["perplexity"] = None if mean_loss is None else math.exp(mean_loss)
        if "entropy" in self.names:
            ordered = [self.entropy[index] for index in sorted(self.entropy)]
            out["entropy"] = np.concatenate(ordered) if ordered else np.empty(0)
        if "calibration" in self.names and self.bins:
            out["calibration"] = self._calibration()
        return out

    def _calibration(self) -> dict[str, Any]:
        bins = self.bins
        weight, confidence, correct = bins["weight"], bins["confidence_sum"], bins["correct_weight"]
        total = float(weight.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_confidence = np.where(weight > 0, confidence / weight, np.nan)
            mean_accuracy = np.where(weight > 0, correct / weight, np.nan)
        return {
            "ece": float(np.abs(correct - confidence).sum() / total) if total > 0 else None,
            "edges": self.edges,
            "count": bins["count"].astype(np.int64),
            "weight": weight,
            "confidence_sum": confidence,
            "correct_weight": correct,
            "confidence": mean_confidence,
            "accuracy": mean_accuracy,
        }


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows ``start`` to ``start + len(target)`` of the input, sent as request ``index``."""

    index: int
    start: int
    scores: NDArray[Any]
    target: NDArray[Any]


@dataclass
class Plan:
    """How an input is cut into requests, and the running totals of their answers."""

    kind: InputKind
    weight: NDArray[np.float64] | None
    ignore_index: int | None
    label_smoothing: float | None
    epsilon: float | None
    dtype: Literal["float64", "float32"]
    transport: Transport
    request_bytes: int
    max_elements: int
    return_losses: bool
    total_rows: int | None
    #: Where to write the per-sample losses as .npy (memory-mapped when the row count is known).
    losses_path: Path | None = None
    #: One weight per row of an array input (scikit-learn's sample_weight), and the metrics asked for.
    sample_weight: NDArray[np.float64] | None = None
    metric_options: dict[str, Any] = field(default_factory=dict)
    metrics: MetricTotals = field(default_factory=MetricTotals)
    loss_sum: float = 0.0
    count: int = 0
    weight_sum: float = 0.0
    rows: int = 0
    requests: int = 0
    largest_request: int = 0
    started: float = field(default_factory=time.perf_counter)
    _losses: NDArray[np.floating[Any]] | None = None
    _pieces: dict[int, NDArray[np.floating[Any]]] = field(default_factory=dict)
    _binary: bool = True

    def metered(
        self,
        sample_weight: ArrayLike | None,
        metrics: Sequence[str],
        top_k: int | None,
        calibration_bins: int | None,
        *,
        array_input: bool,
    ) -> None:
        """Take the sample weights and the metrics asked for."""
        unknown = [name for name in metrics if name not in METRICS]
        if unknown:
            raise XentError(f"unknown metrics {unknown}; evaluate combines {list(METRICS)}")
        if sample_weight is not None:
            if not array_input:
                raise XentError("sample_weight needs an array input (predictions and target=)")
            self.sample_weight = np.asarray(sample_weight, dtype=np.float64)
        self.metrics = MetricTotals(tuple(dict.fromkeys(metrics)))
        self.metric_options = {"top_k": top_k, "calibration_bins": calibration_bins}

    @property
    def wants_losses(self) -> bool:
        return self.return_losses or self.losses_path is not None

    def rows_per_request(self, scores: NDArray[Any], target: NDArray[Any], binary: bool) -> int:
        row_numbers = math.prod(scores.shape[1:])
        target_numbers = math.prod(target.shape[1:])
        if binary:
            itemsize = 4 if self.dtype == "float32" else 8
            per_row = row_numbers * itemsize + target_numbers * 8
            room = self.request_bytes - _HEADER_ROOM
        else:
            per_row = (row_numbers + target_numbers) * _JSON_NUMBER_BYTES + _JSON_ROW_BYTES
            room = self.request_bytes - 1024
        rows = min(room // max(per_row, 1), self.max_elements // max(row_numbers, 1))
        if rows < 1:
            raise XentError(
                f"one row of {row_numbers} numbers does not fit a request of {self.request_bytes} bytes "
                f"and {self.max_elements} numbers; raise request_bytes (within the server's body limit)"
            )
        return int(rows)

    def chunks(self, batches: Iterable[tuple[NDArray[Any], NDArray[Any]]]) -> Iterator[Chunk]:
        """The requests' rows, in input order, each batch cut to fit a request."""
        index = start = 0
        rows: int | None = None
        for scores, target in batches:
            if scores.ndim < 2 or target.shape[:1] != scores.shape[:1]:
                raise XentError(
                    f"predictions of shape {list(scores.shape)} and target of shape {list(target.shape)}: "
                    "evaluate needs batched input (N, C, ...) and N targets"
                )
            if rows is None:
                numbers = scores.size + target.size if self.total_rows is not None else None
                self._binary = self._choose_binary(numbers)
                rows = self.rows_per_request(scores, target, self._binary)
                if self.wants_losses and self.total_rows is not None:
                    dtype = np.dtype(np.float32 if self.dtype == "float32" else np.float64)
                    shape = (self.total_rows, *target.shape[1:])
                    if self.losses_path is not None:
                        self._losses = open_memmap(self.losses_path, mode="w+", dtype=dtype, shape=shape)
                    else:
                        self._losses = np.empty(shape, dtype=dtype)
            for offset in range(0, len(target), rows):
                end = offset + rows
                yield Chunk(index, start + offset, scores[offset:end], target[offset:end])
                index += 1
            start += len(target)

    def _choose_binary(self, numbers: int | None) -> bool:
        if self.metrics.names:
            return False  # the metrics are /v1 outputs
        if self.transport != "auto":
            return self.transport == "binary"
        return numbers is None or numbers > JSON_MAX_NUMBERS

    def prepare(self, chunk: Chunk) -> Prepared:
        arrays: dict[str, ArrayLike | None] = {
            self.kind: chunk.scores,
            "target": chunk.target,
            "weight": self.weight,
            "sample_weight": self._sample_weight(chunk),
        }
        options = {
            "ignore_index": self.ignore_index,
            "label_smoothing": self.label_smoothing,
            "epsilon": self.epsilon,
            "dtype": self.dtype,
            "reduction": "sum",
            **self.metric_options,
        }
        outputs = (["losses"] if self.wants_losses else []) + list(self.metrics.names)
        transport: Transport = "binary" if self._binary else "json"
        prepared = prepare(ENDPOINTS["cross_entropy"], arrays, options, outputs, transport)
        self.largest_request = max(self.largest_request, prepared.length)
        return prepared

    def add(self, chunk: Chunk, answer: dict[str, Any]) -> None:
        """Take one request's answer into the totals."""
        self.loss_sum += float(answer["loss"])
        count = int(answer["count"])
        self.count += count
        self.weight_sum += self._denominator(chunk, count)
        if self.metrics.names:
            self.metrics.add(chunk.index, answer, self._counted_weight(chunk))
        self.rows += len(chunk.target)
        self.requests += 1
        if self.wants_losses:
            losses = answer["losses"]
            if self._losses is not None:
                self._losses[chunk.start : chunk.start + len(chunk.target)] = losses
            else:
                self._pieces[chunk.index] = losses

    def _sample_weight(self, chunk: Chunk) -> NDArray[np.float64] | None:
        if self.sample_weight is None:
            return None
        return self.sample_weight[chunk.start : chunk.start + len(chunk.target)]

    def _denominator(self, chunk: Chunk, count: int) -> float:
        soft = chunk.target.ndim == chunk.scores.ndim
        v = self._sample_weight(chunk)
        if soft:
            return float(count) if v is None else float(v.sum(dtype=np.float64))
        if self.weight is None and v is None:
            return float(count)
        target = np.asarray(chunk.target)
        kept = target != (-100 if self.ignore_index is None else self.ignore_index)
        # The service accepted these targets, so every one is a class index.
        w = self.weight[np.where(kept, target, 0).astype(np.intp)] if self.weight is not None else 1.0
        products = np.where(kept, w * (1.0 if v is None else v), 0.0)
        return float(np.add.reduce(products, axis=None, dtype=np.float64))

    def _counted_weight(self, chunk: Chunk) -> float:
        """``U``: the sample weights of the targets not ignored (their count without weights)."""
        target = np.asarray(chunk.target)
        kept = target != (-100 if self.ignore_index is None else self.ignore_index)
        v = self._sample_weight(chunk)
        return float(np.add.reduce(np.where(kept, 1.0 if v is None else v, 0.0), axis=None))

    def result(self) -> EvaluateResult:
        losses = self._losses
        if self.wants_losses and losses is None:
            ordered = [self._pieces[index] for index in sorted(self._pieces)]
            losses = np.concatenate(ordered) if ordered else np.empty(0)
            if self.losses_path is not None:
                np.save(self.losses_path, losses)
        if isinstance(losses, np.memmap):
            losses.flush()
        defined = self.weight_sum != 0 and self.count != 0
        mean = self.loss_sum / self.weight_sum if defined else None
        return EvaluateResult(
            loss=mean,
            loss_sum=self.loss_sum,
            count=self.count,
            weight_sum=self.weight_sum,
            rows=self.rows,
            requests=self.requests,
            seconds=time.perf_counter() - self.started,
            largest_request=self.largest_request,
            losses=losses,
            **self.metrics.result(mean),
        )


def as_batches(
    predictions: ArrayLike | Iterable[tuple[ArrayLike, ArrayLike]], target: ArrayLike | None
) -> tuple[Iterable[tuple[NDArray[Any], NDArray[Any]]], int | None]:
    """The input as (scores, target) batches, and its row count when it is known in advance.

    An array (a ``numpy.memmap`` included) with its ``target`` is one batch, sliced lazily: the rows
    of a memory map are read from the file only as each request is built.
    """
    if target is not None:
        scores = predictions if isinstance(predictions, np.ndarray) else np.asarray(predictions)
        labels = target if isinstance(target, np.ndarray) else np.asarray(target)
        return [(scores, labels)], len(labels) if labels.ndim else None
    if isinstance(predictions, np.ndarray):
        raise XentError("evaluate needs target= with an array of predictions")

    def batches() -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
        for item in predictions:  # type: ignore[union-attr]
            if not (isinstance(item, tuple) and len(item) == 2):
                raise XentError("each batch must be a (predictions, target) pair")
            yield np.asarray(item[0]), np.asarray(item[1])

    return batches(), None

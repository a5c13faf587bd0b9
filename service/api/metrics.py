"""Prometheus metrics: what the service did, by route and status, correct across worker processes.

With several uvicorn workers each process counts on its own; ``prometheus_client``'s multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, which ``python -m service`` sets up for ``--workers`` > 1) makes
every worker write its values to a shared directory and ``/metrics`` add them up, whichever worker
answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

#: Seconds; from a small request's fraction of a millisecond to a large batch's seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """The service's collectors, in a registry of their own (one per app, so tests can make many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.requests = Counter(
            "xent_requests_total",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "xent_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.samples = Counter(
            "xent_samples_total",
            "Samples (batch rows) computed on, by route.",
            ["route"],
            registry=self.registry,
        )
        self.elements = Counter(
            "xent_elements_total",
            "Input numbers computed on, by route.",
            ["route"],
            registry=self.registry,
        )
        self.validation_failures = Counter(
            "xent_validation_failures_total",
            "Problems found in refused requests, by route and kind (e.g. out_of_range, not_finite).",
            ["route", "kind"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "xent_requests_in_flight",
            "Requests being handled now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._work: dict[str, tuple[Counter, Counter]] = {}

    def observe(
        self,
        *,
        method: str,
        route: str,
        status: int,
        seconds: float,
        samples: int = 0,
        elements: int = 0,
        problem_kinds: Iterable[str] = (),
    ) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            # labels() costs a lock and a tuple per call; a request's children are looked up once.
            code = str(status)
            children = self._children[key] = (
                self.requests.labels(method, route, code),
                self.latency.labels(method, route, code),
            )
        children[0].inc()
        children[1].observe(seconds)
        if samples:
            work = self._work.get(route)
            if work is None:
                work = self._work[route] = (self.samples.labels(route), self.elements.labels(route))
            work[0].inc(samples)
            work[1].inc(elements)
        for kind in problem_kinds:
            self.validation_failures.labels(route, kind).inc()

    def exposition(self) -> bytes:
        """The text format, summed over every worker process in multiprocess mode."""
        if self.multiprocess:
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

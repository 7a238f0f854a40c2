"""Prometheus adapter (prometheus-client): the only module that imports it.

One registry per app (tests run many apps in a process). HTTP metrics are observed by
the request layer into plain ints (``Latencies``); they and the loop's own numbers are
read at scrape time by collectors, so the request path pays for a few dict updates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class LoopSnapshot:
    """What the collector reads at scrape time; filled by a callable the app provides."""

    def __init__(self, **values: Any) -> None:
        self.values = values

    def get(self, key: str, default: Any = None) -> Any:
        """One value, or ``default``."""
        return self.values.get(key, default)


class _LoopCollector(Collector):
    def __init__(self, snapshot: Callable[[], LoopSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot()
        served = CounterMetricFamily(
            "continual_predictions",
            "Predictions served, by model version",
            labels=["model_version"],
        )
        for version, n in sorted(s.get("predictions", {}).items()):
            served.add_metric([version], n)
        yield served
        yield _gauge(
            "continual_live_accuracy",
            "Champion accuracy over the evaluation window",
            s.get("accuracy"),
        )
        yield _gauge(
            "continual_window_samples", "Scored rows in the evaluation window", s.get("samples")
        )
        yield _gauge(
            "continual_min_samples",
            "Scored rows live accuracy is judged from (status collecting below it)",
            s.get("min_samples"),
        )
        yield _gauge(
            "continual_accuracy_threshold", "Retrain below this live accuracy", s.get("threshold")
        )
        yield _gauge(
            "continual_drift_share",
            "Share of features drifted at the last check",
            s.get("drift_share"),
        )
        yield _gauge(
            "continual_prediction_log_pending",
            "Predictions buffered, not yet written",
            s.get("pending"),
        )
        yield _gauge("continual_model_loaded", "1 when a champion is loaded", s.get("loaded"))
        yield _gauge(
            "continual_retrain_running",
            "1 while a retrain runs in this process",
            s.get("retraining"),
        )
        yield _labelled_counter(
            "continual_checks", "Checks by decision", "decision", s.get("decisions", {})
        )
        yield _labelled_counter(
            "continual_retrains", "Retrains by outcome", "outcome", s.get("outcomes", {})
        )
        durations: list[float] = s.get("durations", [])
        summary = SummaryMetricFamily(
            "continual_retrain_duration_seconds",
            "Wall time of retrains (recent)",
            count_value=len(durations),
            sum_value=sum(durations),
        )
        yield summary
        yield CounterMetricFamily(
            "continual_model_swaps", "Champion swaps in this process", value=s.get("swaps", 0)
        )
        yield CounterMetricFamily(
            "continual_promotions",
            "Promotions and rollbacks made by this process",
            value=s.get("promotions", 0),
        )
        deliveries = CounterMetricFamily(
            "continual_alert_deliveries",
            "Alert deliveries by channel and outcome",
            labels=["channel", "outcome"],
        )
        for (channel, ok), n in sorted(s.get("deliveries", {}).items()):
            deliveries.add_metric([channel, "ok" if ok else "failed"], n)
        yield deliveries
        yield _gauge(
            "continual_estimated_accuracy",
            "Champion accuracy estimated from calibrated confidence on recent predictions",
            s.get("estimated_accuracy"),
        )
        yield _gauge(
            "continual_estimated_samples",
            "Recent predictions the estimated accuracy rests on",
            s.get("estimated_samples"),
        )
        yield CounterMetricFamily(
            "continual_quality_rows",
            "Rows (ingested and predicted) counted for data quality",
            value=s.get("quality_rows", 0),
        )
        quality: Mapping[str, tuple[int, int]] = s.get("quality", {})
        for name, index, doc in (
            ("out_of_range", 0, "Values beyond the training range by more than the margin"),
            ("unseen", 1, "Categories the champion never saw in training"),
        ):
            family = CounterMetricFamily(f"continual_quality_{name}", doc, labels=["feature"])
            for feature, counts in sorted(quality.items()):
                family.add_metric([feature], counts[index])
            yield family
        yield CounterMetricFamily(
            "continual_shadow_predictions",
            "Predictions made by a challenger in shadow",
            value=s.get("shadow_written", 0),
        )
        yield CounterMetricFamily(
            "continual_shadow_dropped",
            "Requests not shadowed because the shadow queue was full",
            value=s.get("shadow_dropped", 0),
        )
        trial_info = InfoMetricFamily("continual_trial", "The challenger in shadow or canary")
        trial: Mapping[str, str] | None = s.get("trial")
        if trial:
            trial_info.add_metric([], dict(trial))
        yield trial_info
        info = InfoMetricFamily("continual_champion", "The champion being served")
        champion: Mapping[str, str] | None = s.get("champion")
        if champion:
            info.add_metric([], dict(champion))
        yield info


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc)
    if value is not None:
        g.add_metric([], float(value))
    return g


def _labelled_counter(
    name: str, doc: str, label: str, counts: Mapping[str, int]
) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(counts.items()):
        c.add_metric([key], n)
    return c


class Latencies:
    """Request counts and latency histograms as plain ints, read by the collector at scrape
    time. prometheus-client's ``labels().observe()`` takes a lock per increment and looks
    its child up by a tuple of labels: 7 locked increments and 3 lookups a request, a tenth
    of a single-row predict's own time. These are mutated by the event loop only (the one
    thread that serves requests), so they take no lock."""

    def __init__(self, bounds: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts: dict[tuple[str, ...], int] = {}  # labels -> count
        self.buckets: dict[tuple[str, ...], list[int]] = {}  # labels -> per bucket, +Inf last
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        """One observation of ``seconds`` under ``labels``."""
        got = self.buckets.get(labels)
        if got is None:
            got = self.buckets[labels] = [0] * (len(self.bounds) + 1)
            self.sums[labels] = 0.0
        got[bisect_left(self.bounds, seconds)] += 1  # a bucket's bound is inclusive
        self.sums[labels] += seconds

    def count(self, labels: tuple[str, ...]) -> None:
        """One more under ``labels`` (a counter)."""
        self.counts[labels] = self.counts.get(labels, 0) + 1

    def histogram(self, name: str, doc: str, names: list[str]) -> HistogramMetricFamily:
        """The histogram family, cumulative buckets as Prometheus wants them."""
        family = HistogramMetricFamily(name, doc, labels=names)
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        for labels, counts in sorted(self.buckets.items()):
            family.add_metric(
                list(labels), list(zip(edges, accumulate(counts), strict=True)), self.sums[labels]
            )
        return family

    def counter(self, name: str, doc: str, names: list[str]) -> CounterMetricFamily:
        """The counter family of what ``count`` counted."""
        family = CounterMetricFamily(name, doc, labels=names)
        for labels, n in sorted(self.counts.items()):
            family.add_metric(list(labels), n)
        return family


class _HttpCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        yield m.http.counter("continual_http_requests", "HTTP requests", _REQUEST_LABELS)
        yield m.http.histogram(
            "continual_http_request_duration_seconds", "HTTP request duration", _ROUTE_LABELS
        )
        yield _gauge("continual_http_requests_in_flight", "HTTP requests in flight", m.in_flight)
        yield m.predictions.histogram(
            "continual_prediction_latency_seconds",
            "Time to validate and score a prediction request",
            ["kind"],
        )


_REQUEST_LABELS = ["method", "route", "status"]
_ROUTE_LABELS = ["method", "route"]


class Metrics:
    """The app's Prometheus registry: HTTP metrics plus the loop's collector."""

    def __init__(self, snapshot: Callable[[], LoopSnapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = Latencies()  # counts by (method, route, status), latency by (method, route)
        self.predictions = Latencies()  # by kind
        self.in_flight = 0
        self.registry.register(_HttpCollector(self))
        self.registry.register(_LoopCollector(snapshot))

    def request_started(self) -> None:
        """One more request in flight (called by the middleware)."""
        self.in_flight += 1

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request (called by the middleware)."""
        self.in_flight -= 1
        self.http.count((method, route, str(status)))
        self.http.observe((method, route), seconds)

    def observe_prediction(self, kind: str, seconds: float) -> None:
        """One prediction call's latency (``single`` or ``batch``)."""
        self.predictions.observe((kind,), seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

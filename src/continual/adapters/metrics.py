"""Prometheus adapter (prometheus-client): the only module that imports it.

One registry per app (tests run many apps in a process). HTTP metrics are observed by
the request middleware; the loop's own numbers are read from the services at scrape
time by a collector, so the request path pays for nothing but a counter increment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

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


class Metrics:
    """The app's Prometheus registry: HTTP metrics plus the loop's collector."""

    def __init__(self, snapshot: Callable[[], LoopSnapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "continual_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "continual_http_request_duration_seconds",
            "HTTP request duration",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "continual_http_requests_in_flight", "HTTP requests in flight", registry=self.registry
        )
        self.prediction_latency = Histogram(
            "continual_prediction_latency_seconds",
            "Time to validate and score a prediction request",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_LoopCollector(snapshot))

    def request_started(self) -> None:
        """One more request in flight (called by the middleware)."""
        self.in_flight.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request (called by the middleware)."""
        self.in_flight.dec()
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

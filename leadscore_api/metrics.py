"""Prometheus metrics for one app instance, and the ASGI middleware that records requests.

Each app gets its own registry so several apps in one process (tests, benchmarks) never share or
double-register collectors.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
# Requests that matched no route, or used an unusual method, share one label value, so that
# random paths and methods cannot explode the number of time series.
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "leadscore_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadscore_http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "leadscore_score",
            "Scores served, by model version.",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.model_reloads = Counter(
            "leadscore_model_reloads",
            "Model files loaded and swapped in (the startup load included).",
            registry=self.registry,
        )
        self.model_reload_failures = Counter(
            "leadscore_model_reload_failures",
            "Model files rejected (corrupt, truncated, feature-incompatible, unreadable).",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "leadscore_model_info",
            "The model being served (value 1).",
            ["model_version", "sha256"],
            registry=self.registry,
        )
        self.model_loaded_at = Gauge(
            "leadscore_model_loaded_timestamp_seconds",
            "Unix time the served model was loaded.",
            registry=self.registry,
        )
        # Labelled children, looked up once per label set instead of once per request.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._score_series: dict[str, Any] = {}

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method if method in KNOWN_METHODS else "other", status)
        series = self._request_series.get(key)
        if series is None:
            series = (self.requests.labels(route, key[1], str(status)), self.latency.labels(route))
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def score_histogram(self, model_version: str) -> Any:
        series = self._score_series.get(model_version)
        if series is None:
            series = self._score_series[model_version] = self.scores.labels(model_version)
        return series

    def model_swapped(self, version: str, sha256: str, loaded_at: float) -> None:
        self.model_reloads.inc()
        self.model_info.clear()
        self.model_info.labels(version, sha256).set(1)
        self.model_loaded_at.set(loaded_at)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request; plain ASGI to keep per-request work minimal."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the outer error handler answers if the app raises

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.record_request(route, scope["method"], status, perf_counter() - started)

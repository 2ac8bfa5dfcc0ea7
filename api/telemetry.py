"""The API process's own metrics: request latency and alert fan-out latency.

One ``ApiMetrics`` per app, made by ``create_app`` and handed to the middleware and
to the lifespan state; ``/metrics`` merges its registry into each scrape. Nothing
is registered globally or at import, so two apps in one test process never share
counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FANOUT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "<unmatched>"  # one label for every unknown path: scanners must not add series


class ApiMetrics(Collector):
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "cv_api_http_request_duration_seconds",
            "time from a request to the start of its response, by route template",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=HTTP_BUCKETS_S,
        )
        self.alert_fanout = Histogram(
            "cv_api_alert_fanout_seconds",
            "time from an incident's creation to its 'opened' alert being sent to a client",
            ["transport"],
            registry=self.registry,
            buckets=FANOUT_BUCKETS_S,
        )
        self.live_streams = Gauge(
            "cv_api_live_streams",
            "MJPEG live previews being streamed to clients now",
            registry=self.registry,
        )

    def observe_fanout(self, transport: str, incident: dict[str, Any], now_ts: float) -> None:
        created_ts = incident.get("created_ts")
        if isinstance(created_ts, int | float):
            # Clamped: created_ts comes from another process's clock.
            self.alert_fanout.labels(transport).observe(max(0.0, now_ts - float(created_ts)))

    def collect(self) -> Iterable[Metric]:
        """So ``/metrics`` can register this beside its per-scrape collectors."""
        return self.registry.collect()


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Times HTTP requests up to the start of the response: streamed bodies (SSE,
    footage downloads) would otherwise count their whole length as latency. The
    route template (``/api/incidents/{incident_id}``), not the path, is the label,
    so ids do not make new series."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            self.metrics.http_latency.labels(
                scope["method"], route_template(scope), str(status)
            ).observe(time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not observed:  # an exception before any response: the server answers 500
                observe(500)

"""``/metrics`` for the bus and the single writer: is Redis/Valkey up, what waits in
the store's outbox, how often the database refused a write.

While the bus is down the API cannot read what the stages published there, so the
scrape still answers (200) with ``cv_bus_up 0`` and the API's own metrics rather
than failing: an alert rule on ``cv_bus_up`` fires for the outage itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# (metric, stats key, help): counters of the ``bus`` entry (core/outbox.py) ...
_BUS_COUNTERS = (
    ("cv_bus_outbox_published", "published", "alerts and events the store published"),
    ("cv_bus_outbox_dropped", "dropped", "messages dropped because the outbox was full"),
    ("cv_bus_outages", "outages", "times the store found the bus unavailable"),
    ("cv_bus_data_lost", "data_lost", "times the bus came back without its data"),
)
# ... and of the ``store`` entry (core/storage/retry.py).
_STORE_COUNTERS = (
    ("cv_store_db_retries", "retries", "pipeline writes retried: database busy or down"),
    ("cv_store_db_outages", "db_outages", "times the database stopped taking writes"),
    ("cv_store_events_abandoned", "abandoned", "pipeline events not stored at stop"),
)


class BusCollector(Collector):
    def __init__(self, up: bool, bus: dict[str, Any] | None, store: dict[str, Any] | None):
        self._up = up
        self._bus = bus or {}
        self._store = store or {}

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "cv_bus_up", "1 when the API reaches Redis/Valkey", value=1.0 if self._up else 0.0
        )
        if self._bus:
            yield GaugeMetricFamily(
                "cv_bus_outbox_pending",
                "alerts and events waiting for the bus in the store",
                value=float(self._bus.get("pending") or 0),
            )
            for name, key, doc in _BUS_COUNTERS:
                yield CounterMetricFamily(name, doc, value=float(self._bus.get(key) or 0))
        if self._store:
            yield GaugeMetricFamily(
                "cv_store_db_blocked",
                "1 while the writer waits for the database",
                value=0.0 if self._store.get("db_blocked_since_ts") is None else 1.0,
            )
            if self._store.get("queued") is not None:
                yield GaugeMetricFamily(
                    "cv_store_queue_depth",
                    "pipeline events waiting for the writer",
                    value=float(self._store["queued"]),
                )
            for name, key, doc in _STORE_COUNTERS:
                yield CounterMetricFamily(name, doc, value=float(self._store.get(key) or 0))

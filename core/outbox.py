"""The store's outbox: alerts and system events wait here until the bus takes them.

The single writer stores an incident, then hands its alert to this outbox and goes
on: a Redis/Valkey restart must neither lose the alert nor stall the writer. A
thread of its own publishes the messages in order, and retries with capped backoff
while the bus is down.

- **Exactly once.** Every message gets a sequence number of this outbox session.
  The server publishes it through a script that skips a number it already took
  (:meth:`core.bus.EventBus.publish_sequenced`), so a publish whose reply was lost
  with the connection is not added twice when it is retried.
- **Bounded memory.** At most ``max_items`` messages wait. Beyond that the oldest
  ``updated`` alert goes first (a later update or the close carries the same
  fields), else the oldest message. Drops are counted in the stats and logged.
- **A server that came back empty** (no persistence, a new server, an older
  snapshot) is noticed by the same script: what this session published before is
  gone from the streams. The buffered messages are still published, nothing is
  published twice, and a ``bus_data_lost`` event tells operators that alerts from
  before the restart cannot be replayed.
- **Visible.** ``bus_unavailable`` and ``bus_recovered`` events bracket an outage,
  and :meth:`BusOutbox.stats` (published as ``cv:stats`` entry ``bus``) holds the
  counters: pending, published, dropped, outages and how long the last one lasted.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from core.bus import (
    EVENT_STREAM,
    EVENT_STREAM_MAXLEN,
    INCIDENT_STREAM,
    INCIDENT_STREAM_MAXLEN,
    EventBus,
    SequencedMessage,
    incident_totals_field,
)
from core.errors import BusError

log = logging.getLogger(__name__)

MAX_ITEMS = 10_000  # ≈ 20 MB of alerts at most; hours of a busy commune's incidents
RETRY_MIN_S = 0.1
RETRY_MAX_S = 1.0  # a restarted bus is used again within a second
STATS_INTERVAL_S = 2.0

StatsSource = Callable[[], dict[str, Any]]


class BusOutbox:
    """Publishes alerts and events from a bounded, ordered buffer on its own thread."""

    def __init__(
        self,
        bus: EventBus,
        max_items: int = MAX_ITEMS,
        stats_sources: dict[str, StatsSource] | None = None,
    ) -> None:
        self._bus = bus
        self._max_items = max_items
        self._stats_sources = dict(stats_sources or {})
        self._session = uuid.uuid4().hex[:12]
        self._items: collections.deque[SequencedMessage] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._drain_until = 0.0
        self._next_seq = 1
        self._acked_seq = 0
        self._published = 0
        self._duplicates_skipped = 0
        self._dropped = 0
        self._outages = 0
        self._down_since: float | None = None
        self._last_outage_s: float | None = None
        self._data_lost = 0
        self._last_error: str | None = None

    # -- producer side (any thread) ------------------------------------------------
    def publish_incident(self, kind: str, payload: dict[str, Any]) -> None:
        field = incident_totals_field(payload) if kind == "opened" else ""
        self._put(INCIDENT_STREAM, INCIDENT_STREAM_MAXLEN, kind, payload, field)

    def publish_event(self, kind: str, payload: dict[str, Any]) -> None:
        self._put(EVENT_STREAM, EVENT_STREAM_MAXLEN, kind, payload, "")

    def publish_stats(self, stage: str, stats: dict[str, Any]) -> None:
        """Now, not buffered: stats are a snapshot, the next one replaces it."""
        self._bus.publish_stats(stage, stats)

    def set_stats_source(self, name: str, source: StatsSource) -> None:
        """Published next to the outbox's own stats, as ``cv:stats`` entry ``name``."""
        self._stats_sources[name] = source

    def _put(
        self, stream: str, maxlen: int, kind: str, payload: dict[str, Any], field: str
    ) -> None:
        data = json.dumps(payload, separators=(",", ":"))
        with self._cond:
            message = SequencedMessage(self._next_seq, stream, kind, data, field, maxlen)
            self._next_seq += 1
            if len(self._items) >= self._max_items:
                self._drop_one()
            self._items.append(message)
            self._cond.notify()

    def _drop_one(self) -> None:
        # Index 0 may be in flight on the publisher thread: it stays.
        victim = next(
            (i for i in range(1, len(self._items)) if self._items[i].kind == "updated"), 1
        )
        if victim >= len(self._items):
            return
        dropped = self._items[victim]
        del self._items[victim]
        self._dropped += 1
        if self._dropped == 1 or self._dropped % 1000 == 0:
            log.error(
                "bus outbox full (%d waiting): dropped %s %s (%d dropped so far)",
                self._max_items,
                dropped.stream,
                dropped.kind,
                self._dropped,
            )

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bus-outbox", daemon=True)
        self._thread.start()

    def stop(self, drain_timeout_s: float = 5.0) -> int:
        """Publish what is left for up to ``drain_timeout_s``; returns how many were not."""
        with self._cond:
            self._stopping = True
            self._drain_until = time.monotonic() + drain_timeout_s
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout_s + 10.0)
        with self._cond:
            left = len(self._items)
        if left:
            log.error("bus still unavailable at stop: %d alerts/events not published", left)
        return left

    # -- publisher thread ----------------------------------------------------------
    def _run(self) -> None:
        backoff_s = RETRY_MIN_S
        next_stats = time.monotonic()
        while True:
            with self._cond:
                while not self._items and not self._stopping:
                    wait_s = next_stats - time.monotonic()
                    if wait_s <= 0:
                        break
                    self._cond.wait(timeout=wait_s)
                if self._stopping and (not self._items or time.monotonic() > self._drain_until):
                    return
                message = self._items[0] if self._items else None
            if message is not None:
                if not self._publish(message):
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, timeout=backoff_s)
                    backoff_s = min(backoff_s * 2, RETRY_MAX_S)
                    continue
                backoff_s = RETRY_MIN_S
            if self._down_since is None and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + STATS_INTERVAL_S
                self._publish_stats()

    def _publish(self, message: SequencedMessage) -> bool:
        try:
            entry_id, lost = self._bus.publish_sequenced(message, self._session, self._acked_seq)
        except BusError as exc:
            self._went_down(str(exc))
            return False
        with self._cond:
            if self._items and self._items[0] is message:
                self._items.popleft()
        self._acked_seq = message.seq
        if entry_id is None:
            self._duplicates_skipped += 1
            log.info("bus: %s %s was already published; not added again", message.kind, message.seq)
        else:
            self._published += 1
        if self._down_since is not None:
            self._came_back()
        if lost:
            self._lost_data()
        return True

    def _went_down(self, error: str) -> None:
        self._last_error = error
        if self._down_since is not None:
            return
        self._down_since = time.time()
        self._outages += 1
        log.warning("bus unavailable, buffering alerts and events: %s", error)
        # Published once the bus is back, for the record of when the outage began.
        self.publish_event("bus_unavailable", {"error": error, "ts": self._down_since})

    def _came_back(self) -> None:
        assert self._down_since is not None
        outage_s = time.time() - self._down_since
        self._down_since = None
        self._last_outage_s = outage_s
        with self._cond:
            pending = len(self._items)
        log.warning("bus back after %.1f s; %d buffered messages follow", outage_s, pending)
        self.publish_event(
            "bus_recovered",
            {
                "outage_s": round(outage_s, 3),
                "pending": pending,
                "dropped": self._dropped,
                "error": self._last_error,
                "ts": time.time(),
            },
        )
        self._publish_stats()

    def _lost_data(self) -> None:
        self._data_lost += 1
        message = (
            "Redis/Valkey came back without the alerts published before its restart: "
            "they can no longer be replayed (the incidents themselves are in the database); "
            "enable persistence on the Redis/Valkey server to keep them"
        )
        log.warning("bus: %s", message)
        self.publish_event("bus_data_lost", {"message": message, "ts": time.time()})

    def _publish_stats(self) -> None:
        self._bus.publish_stats("bus", self.stats())
        for name, source in self._stats_sources.items():
            self._bus.publish_stats(name, source())

    def stats(self) -> dict[str, Any]:
        with self._cond:
            pending = len(self._items)
        down_since = self._down_since
        return {
            "connected": down_since is None,
            "down_since_ts": down_since,
            "pending": pending,
            "published": self._published,
            "duplicates_skipped": self._duplicates_skipped,
            "dropped": self._dropped,
            "outages": self._outages,
            "last_outage_s": self._last_outage_s,
            "data_lost": self._data_lost,
            "last_error": self._last_error,
            "updated_ts": time.time(),
        }

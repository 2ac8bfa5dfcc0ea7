"""The single writer stage (cv-store): incidents and segment index rows to the
database and the media folder, then the alert to Redis; retention on its own thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from commune_vision.processes import setup_child
from commune_vision.stopflag import StopFlag
from core.bus import EventBus
from core.config import AppConfig, CameraConfig
from core.outbox import BusOutbox

log = logging.getLogger(__name__)


def store_main(
    config: AppConfig, events_q: Any, stop: StopFlag, redis_url: str, worker_id: str | None = None
) -> None:
    """The single writer: incidents to the DB and media folder, then the alert to Redis.

    Retention runs here too, on its own thread, so deleting old footage never
    delays an incident.
    """
    setup_child(stop)
    from core.storage.db import make_engine
    from core.storage.retry import RetryingWriter
    from core.storage.writer import IncidentWriter

    # A short busy timeout: a locked database is retried here (RetryingWriter),
    # where the wait is counted and reported, instead of inside one long call.
    engine = make_engine(config.storage.resolved_database_url, busy_timeout_s=STORE_BUSY_S)
    bus = EventBus(redis_url)
    # Alerts go out through a buffer: a restarting Redis neither loses nor delays them.
    outbox = BusOutbox(bus)
    writer = RetryingWriter(
        IncidentWriter(engine, config.storage.data_dir.resolve(), outbox).handle,
        outbox.publish_event,
    )
    outbox.set_stats_source("store", lambda: {**writer.stats(), "queued": _qsize(events_q)})
    outbox.start()
    retention = threading.Thread(
        target=_retention_loop,
        args=(config, engine, outbox, stop, _retention_turn(redis_url, worker_id, config)),
        name="retention",
        daemon=True,
    )
    retention.start()
    stopped_at: float | None = None

    def give_up() -> bool:
        # Once stopping, a database that stays unavailable gets a few seconds more:
        # the supervisor kills a writer that outstays its stop timeout.
        nonlocal stopped_at
        if not stop.is_set():
            return False
        stopped_at = stopped_at or time.monotonic()
        return time.monotonic() - stopped_at > STORE_STOP_RETRY_S

    while True:
        try:
            event = events_q.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                break  # drained: nothing reported is left behind
            continue
        try:
            writer.store(event, give_up)
        except Exception:
            log.exception("pipeline event could not be stored")
    retention.join(timeout=10)
    outbox.stop()
    bus.close()
    engine.dispose()


STORE_BUSY_S = 5.0
STORE_STOP_RETRY_S = 5.0


def _qsize(q: Any) -> int | None:
    try:
        return int(q.qsize())
    except (NotImplementedError, OSError):
        return None  # macOS has no sem_getvalue


def _retention_turn(redis_url: str, worker_id: str | None, config: AppConfig) -> Callable[[], bool]:
    """Whether this node runs retention now. Workers share one recordings folder: one
    of them (a Redis lease) sweeps it, so two never delete or count the same files."""
    if worker_id is None:
        return lambda: True
    from core.leases import SingletonLease

    lease = SingletonLease(
        redis_url, "retention", worker_id, 3 * config.storage.retention.interval_s
    )
    return lease.hold


def _retention_loop(
    config: AppConfig, engine: Any, bus: BusOutbox, stop: StopFlag, my_turn: Callable[[], bool]
) -> None:
    from core.storage.config_store import ConfigStore
    from core.storage.segments import SegmentIndex
    from streams.retention import Retention

    store = ConfigStore(engine)

    def cameras() -> list[CameraConfig]:
        latest = store.latest()
        return latest.cameras if latest is not None else config.cameras

    root = config.storage.resolved_recordings_dir
    root.mkdir(parents=True, exist_ok=True)
    retention = Retention(
        SegmentIndex(engine), root, cameras, config.storage.retention, bus.publish_event
    )
    reconciled = False
    while True:
        if _retention_pass(retention, my_turn, reconciled):
            reconciled = True
            bus.publish_stats("recording", retention.stats())
        if stop.wait(config.storage.retention.interval_s):
            return


def _retention_pass(retention: Any, my_turn: Callable[[], bool], reconciled: bool) -> bool:
    """One pass, if it is this node's turn; returns whether it was."""
    try:
        if not my_turn():
            return False
    except Exception:
        log.exception("retention turn not known (is Redis down?); skipping a pass")
        return False
    if not reconciled:
        try:
            indexed, removed, _parts = retention.reconcile()
            log.info("recordings: %d indexed, %d stale rows removed", indexed, removed)
        except Exception:
            log.exception("recordings could not be reconciled with the index")
    try:
        retention.run_once(time.time())
    except Exception:
        # A failing disk query must not end retention; the next pass retries.
        log.exception("retention pass failed")
    return True

"""Keep a pipeline event until the database takes it.

The single writer used to log and drop an event whose write failed. A database
that is only busy (SQLite: another connection holds the write lock longer than
the busy timeout, "database is locked") or briefly unreachable (PostgreSQL
restarting) is not a reason to lose an incident: the event is retried, with
capped backoff, until it is stored. Events behind it wait in the pipeline's
bounded queue, in order, and analytics waits for the writer only when that queue
is full (docs/architecture.md: incidents are never dropped). Errors that a retry
cannot fix (a constraint, a bug) still drop the one event, loudly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from core.types import StoreEvent

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.1
RETRY_MAX_S = 1.0  # the writer resumes within a second of the lock being released

Publish = Callable[[str, dict[str, Any]], None]


def is_transient(exc: BaseException) -> bool:
    """Busy, locked, disk full or connection lost: worth another try later."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class RetryingWriter:
    """Wraps the writer's ``handle`` with retries, counts and outage events."""

    def __init__(self, handle: Callable[[StoreEvent], None], publish_event: Publish) -> None:
        self._handle = handle
        self._publish_event = publish_event
        self.stored = 0
        self.retries = 0
        self.abandoned = 0
        self.outages = 0
        self._blocked_since: float | None = None
        self._last_blocked_s: float | None = None
        self._last_error: str | None = None

    def store(self, event: StoreEvent, give_up: Callable[[], bool]) -> bool:
        """Write ``event``, retrying while the database is unavailable. Other errors
        propagate. False only when ``give_up()`` said to stop retrying."""
        delay_s = RETRY_MIN_S
        while True:
            try:
                self._handle(event)
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                self._failed(exc)
                if give_up():
                    self.abandoned += 1
                    log.error("database still unavailable at stop: %s not stored", type(event))
                    return False
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
                continue
            self.stored += 1
            if self._blocked_since is not None:
                self._recovered()
            return True

    def _failed(self, exc: DBAPIError) -> None:
        self.retries += 1
        self._last_error = str(exc.orig or exc).splitlines()[0]
        if self._blocked_since is not None:
            return
        self._blocked_since = time.time()
        self.outages += 1
        log.warning("database unavailable (%s); holding pipeline events", self._last_error)
        self._publish_event(
            "db_unavailable",
            {
                "error": self._last_error,
                "ts": self._blocked_since,
                "message": "the database does not take writes; incidents wait in the "
                "pipeline and are stored when it does",
            },
        )

    def _recovered(self) -> None:
        assert self._blocked_since is not None
        blocked_s = time.time() - self._blocked_since
        self._blocked_since = None
        self._last_blocked_s = blocked_s
        log.warning("database writable again after %.1f s (%d retries)", blocked_s, self.retries)
        self._publish_event(
            "db_recovered",
            {"blocked_s": round(blocked_s, 3), "retries": self.retries, "ts": time.time()},
        )

    def stats(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "retries": self.retries,
            "abandoned": self.abandoned,
            "db_outages": self.outages,
            "db_blocked_since_ts": self._blocked_since,
            "db_last_blocked_s": self._last_blocked_s,
            "db_last_error": self._last_error,
            "updated_ts": time.time(),
        }

"""Fresh query-planner statistics for SQLite (PostgreSQL's autovacuum keeps its own).

Without ``ANALYZE`` SQLite assumes every ``column = ?`` picks about ten rows, so
``status = 'new' ORDER BY peak_score`` fetches and sorts half the table through
the status index (250 ms at a million incidents) instead of walking the score
index (2 ms). With statistics it picks well. ``ANALYZE`` reads every index (about
1 s per million incidents) and briefly takes the write lock, so it runs in a
background thread, only when the statistics are missing or the table has grown
or shrunk by a fifth since, checked at most every ``check_every_s``.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

DRIFT = 0.2  # re-analyze when the row count moved by this share since the last time


class PlannerStatistics:
    def __init__(self, engine: Engine, check_every_s: float = 600.0) -> None:
        self._engine = engine
        self._check_every_s = check_every_s
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def stale(self) -> bool:
        """Are the incidents table's statistics missing, or off by more than DRIFT?"""
        with self._engine.connect() as conn:
            has_stats = conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
            stat = (
                conn.execute(
                    text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_incidents_start'")
                ).scalar()
                if has_stats
                else None
            )
            # max(rowid) is one index lookup; count(*) would read the whole table.
            rows = conn.execute(text("SELECT max(rowid) FROM incidents")).scalar() or 0
        if stat is None:
            return rows > 0
        analyzed = int(str(stat).split()[0])
        return bool(abs(int(rows) - analyzed) > DRIFT * max(analyzed, 1))

    def refresh(self) -> None:
        """``ANALYZE`` now, in the caller's thread."""
        t0 = time.monotonic()
        with self._engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        log.info("sqlite planner statistics refreshed in %.1f s", time.monotonic() - t0)

    def refresh_if_stale(self) -> None:
        if self.stale():
            self.refresh()

    def maybe_refresh_in_background(self) -> None:
        """Cheap to call on every query: at most one check per ``check_every_s``."""
        if self._engine.dialect.name != "sqlite":
            return
        now = time.monotonic()
        with self._lock:
            busy = self._thread is not None and self._thread.is_alive()
            if busy or now < self._next_check:
                return
            self._next_check = now + self._check_every_s
            self._thread = threading.Thread(target=self._run, name="sqlite-analyze", daemon=True)
            self._thread.start()

    def wait(self, timeout_s: float | None = None) -> None:
        """Until a background refresh (if any) has finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self.refresh_if_stale()
        except Exception:  # a background nicety: never let it take anything down
            log.warning("sqlite planner statistics refresh failed", exc_info=True)

"""Engine creation with the SQLite settings that let one writer and many readers coexist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def _casefold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


BUSY_TIMEOUT_S = 10.0  # an API write waits this long, then answers 503 (api/unavailable.py)


def make_engine(database_url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """``busy_timeout_s``: how long a SQLite write waits for another connection's
    lock before "database is locked" (the pipeline's writer waits less and retries,
    core/storage/retry.py)."""
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": busy_timeout_s})
        busy_timeout_ms = int(busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the writer commits; NORMAL sync is
            # durable across process crashes, which is what WAL mode needs.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # SQLite's lower()/LIKE fold ASCII only; notes search needs Unicode
            # case folding for Vietnamese text (core.storage.search).
            dbapi_conn.create_function("casefold", 1, _casefold, deterministic=True)

        return engine
    return create_engine(database_url, pool_pre_ping=True)

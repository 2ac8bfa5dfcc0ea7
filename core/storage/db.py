"""Engine creation with the SQLite settings that let one writer and many readers coexist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def _casefold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


def make_engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while the writer commits; NORMAL sync is
            # durable across process crashes, which is what WAL mode needs.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # SQLite's lower()/LIKE fold ASCII only; notes search needs Unicode
            # case folding for Vietnamese text (core.storage.search).
            dbapi_conn.create_function("casefold", 1, _casefold, deterministic=True)

        return engine
    return create_engine(database_url, pool_pre_ping=True)

"""Bounds shared by path and query parameters.

Ids and timestamps are bounded where they are declared, not where they are used: a
number the database or ``datetime`` cannot hold must be a 422 naming the parameter,
never an ``OverflowError`` from the driver (a 500). Found by fuzzing the API
(tests/reliability/test_fuzz_api.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

# Row ids are INTEGER columns: 32-bit on PostgreSQL, the smaller of the two databases.
MAX_ROW_ID = 2**31 - 1
# 9999-12-31T23:59:59Z: the last instant ``datetime`` can print, so every timestamp
# that passes can be shown in a message or a file name.
MAX_TS = 253_402_300_799.0

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="row id")]


def ts_query(description: str) -> Any:
    """A UTC epoch-seconds query parameter: finite, 0 … year 9999."""
    return Query(ge=0, le=MAX_TS, allow_inf_nan=False, description=description)


OptionalTs = Annotated[float | None, ts_query("UTC epoch seconds")]

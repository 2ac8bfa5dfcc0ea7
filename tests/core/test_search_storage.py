"""Search internals on real SQLite: cursors, UTC-offset pieces, query plans, planner stats."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.models import IncidentRow
from core.storage.planner_stats import PlannerStatistics
from core.storage.search import (
    Cursor,
    IncidentQuery,
    InvalidCursorError,
    run_search,
    search_statement,
    utc_offsets,
)
from tests.incident_data import T0, bulk_insert, expected_ids, generate


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_cursor_round_trips_exactly_and_is_bound_to_its_sort() -> None:
    cursor = Cursor("score", 0.1 + 0.2, "0190f1c2aa00ffee0011")  # not a short decimal
    token = cursor.encode()
    assert Cursor.decode(token, "score") == cursor
    with pytest.raises(InvalidCursorError, match="sort=score"):
        Cursor.decode(token, "newest")
    crafted = [
        ["score", 10**400, "ab"],  # overflows a float
        ["score", 1.0, "ab\n"],  # a newline after the hex
        ["score", True, "ab"],
        ["score", "1", "ab"],
        ["score", 1.0, "ab", "extra"],
        {"score": 1, "k": 2, "id": 3},
    ]
    tokens = [base64.urlsafe_b64encode(json.dumps(c).encode()).decode() for c in crafted]
    for bad in ("", "e30", token[:-2], "!!!!", *tokens):
        with pytest.raises(InvalidCursorError):
            Cursor.decode(bad, "score")


def _ts(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def test_utc_offsets_cut_at_each_daylight_saving_change() -> None:
    year = (_ts(2026, 1, 1), _ts(2027, 1, 1))
    assert utc_offsets(ZoneInfo("Asia/Ho_Chi_Minh"), *year) == [(year[0], 7 * 3600)]
    # Europe/Berlin: +1 h, then +2 h from 2026-03-29 01:00 UTC, +1 h from 2026-10-25 01:00 UTC.
    assert utc_offsets(ZoneInfo("Europe/Berlin"), *year) == [
        (year[0], 3600),
        (_ts(2026, 3, 29, 1), 7200),
        (_ts(2026, 10, 25, 1), 3600),
    ]
    # A window that starts inside summer time and ends before the change: one piece.
    summer = (_ts(2026, 6, 1), _ts(2026, 7, 1))
    assert utc_offsets(ZoneInfo("Europe/Berlin"), *summer) == [(summer[0], 7200)]


COMMON = {
    "newest": IncidentQuery(),
    "camera_in_window": IncidentQuery(camera_ids=["cam-03"], since_ts=T0, until_ts=T0 + 86400),
    "cameras": IncidentQuery(camera_ids=["cam-03", "cam-04"]),
    "type_and_status": IncidentQuery(types=["intrusion"], statuses=["new"]),
    "statuses": IncidentQuery(statuses=["new", "acknowledged"]),
    "label": IncidentQuery(labels=["dog"], since_ts=T0),
    "assignee": IncidentQuery(assignee="anh"),
    "locked": IncidentQuery(evidence_locked=True),
    "best_scores": IncidentQuery(sort="score", min_score=0.9),
    "oldest": IncidentQuery(sort="oldest", since_ts=T0),
    "notes_common_term": IncidentQuery(text="công an"),
    "notes_rare_term": IncidentQuery(text="59-X1 123.45"),
    "deep_page": IncidentQuery(after=Cursor("newest", T0 + 86400, "f" * 24)),
}


def _plan(engine: Engine, query: IncidentQuery) -> list[str]:
    note_ids = ["0" * 24] if query.text and "59" in query.text else None  # the rare-term plan
    compiled = search_statement(query, "sqlite", note_ids).compile(
        dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params).fetchall()
    return [str(row[3]) for row in rows]


@pytest.mark.parametrize("with_stats", [False, True], ids=["fresh", "analyzed"])
def test_common_queries_never_scan_the_incidents_table(engine: Engine, with_stats: bool) -> None:
    """Every common query reaches incidents through an index: with SQLite's guesses on a
    new database, and with the statistics the repository keeps fresh."""
    if with_stats:
        bulk_insert(engine, generate(5000, seed=3))
        PlannerStatistics(engine).refresh()
    for name, query in COMMON.items():
        plan = _plan(engine, query)
        full_scans = [step for step in plan if step == "SCAN incidents"]
        assert not full_scans, f"{name}: {plan}"
        assert any("incidents USING" in step for step in plan), f"{name}: {plan}"
    assert any("ix_incidents_score" in s for s in _plan(engine, COMMON["best_scores"]))
    assert any("ix_incidents_locked_start" in s for s in _plan(engine, COMMON["locked"]))
    # Several cameras: one index range per camera, merged, not all their rows sorted.
    assert "MERGE (UNION ALL)" in _plan(engine, COMMON["cameras"])


def test_planner_statistics_follow_the_table(engine: Engine) -> None:
    stats = PlannerStatistics(engine, check_every_s=3600.0)
    assert not stats.stale()  # an empty table needs none
    rows = generate(300, seed=1).incidents
    with engine.begin() as conn:
        conn.execute(insert(IncidentRow), rows)
    assert stats.stale()
    stats.maybe_refresh_in_background()
    stats.wait(30.0)
    assert not stats.stale()
    with engine.connect() as conn:
        analyzed = conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_incidents_start'"
        ).scalar_one()
    assert str(analyzed).split()[0] == "300"
    # Within check_every_s a second call does not look again, even though it is stale now.
    with engine.begin() as conn:
        conn.execute(insert(IncidentRow), generate(300, seed=2).incidents)
    stats.maybe_refresh_in_background()
    stats.wait(30.0)
    assert stats.stale()


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_notes_search_gives_the_same_rows_whichever_plan(engine: Engine, share: float) -> None:
    """Few matching notes: their ids first; many: a walk with EXISTS. At half the
    matches the notes scan is cut short, typically with fewer distinct incidents than
    notes (some incidents have two): that must count as "many", not as a full list."""
    data = generate(3000, seed=4)
    bulk_insert(engine, data)
    term = "biển số"  # in about 30 % of notes, written "Biển số"
    matching = [n["incident_id"] for n in data.notes if term in n["text"].lower()]
    assert len(matching) > len(set(matching)) > 50  # some incidents have two such notes
    cap = int(share * len(matching))
    for sort in ("newest", "oldest", "score"):
        query = IncidentQuery(text=term, sort=sort, limit=1000)
        with Session(engine) as session:
            got = [row.id for row in run_search(session, query, note_ids_cap=cap)]
        assert got == expected_ids(data, query), (cap, sort)

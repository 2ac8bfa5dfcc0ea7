"""Incident search and counts: filters, keyset pagination, per-day statistics.

Runs on SQLite and PostgreSQL; the SQL differs in two places, branched on the
dialect here and nowhere else:

- ``labels`` (a JSON list): SQLite tests membership with ``json_each``; PostgreSQL
  with ``labels::jsonb ?| array[...]``, which the GIN index of migration 0006 serves.
  Both compare whole elements, so ``car`` never matches ``carriage``.
- notes text: PostgreSQL's ``ILIKE`` folds case by the database's locale (and a
  pg_trgm index serves it). SQLite's ``LIKE`` folds ASCII only, so a term with other
  letters (Vietnamese ones) compares ``casefold(text)``, a function that
  ``core.storage.db.make_engine`` registers.

The day buckets of :func:`count_statement` are plain arithmetic on both.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import Label

from core.storage.models import IncidentNoteRow, IncidentRow
from core.types import Incident

SortOrder = Literal["newest", "oldest", "score"]
SORT_ORDERS: tuple[str, ...] = get_args(SortOrder)
GroupKey = Literal["camera", "day", "type"]
GROUP_KEYS: tuple[str, ...] = get_args(GroupKey)

_ID = re.compile(r"[0-9a-f]{1,32}")  # incident ids: hex (core.types.new_incident_id)
_LIKE_ESCAPE = "\\"


class InvalidCursorError(ValueError):
    """A ``cursor`` this module did not make, or made for another sort order."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's sort key and id (the id breaks ties)."""

    sort: SortOrder
    key: float
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.key, self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def after(cls, sort: SortOrder, incident: Incident) -> Cursor:
        key = incident.peak_score if sort == "score" else incident.start_ts
        return cls(sort, float(key), incident.id)

    @classmethod
    def decode(cls, token: str, sort: SortOrder) -> Cursor:
        """Parse a cursor for ``sort``; :class:`InvalidCursorError` says what is wrong."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value = json.loads(raw)
            made_for, key, last_id = value  # not a 3-list: ValueError or TypeError
            key = float(key) if not isinstance(key, bool | str) else math.nan
        except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursorError("not a cursor this API returned") from exc
        if not (
            isinstance(value, list)
            and made_for in SORT_ORDERS
            and math.isfinite(key)
            and isinstance(last_id, str)
            and _ID.fullmatch(last_id)
        ):
            raise InvalidCursorError("not a cursor this API returned")
        if made_for != sort:
            raise InvalidCursorError(f"made for sort={made_for}, not sort={sort}")
        return cls(sort, key, last_id)


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    """Every filter is optional; lists mean "any of"; all given filters must hold."""

    camera_ids: Sequence[str] = ()
    types: Sequence[str] = ()
    since_ts: float | None = None  # start_ts >= since_ts
    until_ts: float | None = None  # start_ts < until_ts
    labels: Sequence[str] = ()  # at least one of these among the incident's labels
    zones: Sequence[str] = ()
    statuses: Sequence[str] = ()
    min_score: float | None = None  # peak_score >= min_score
    assignee: str | None = None
    evidence_locked: bool | None = None
    text: str | None = None  # case-insensitive substring of one of its notes
    sort: SortOrder = "newest"
    after: Cursor | None = None  # the previous page's last row
    limit: int = 50


def _escape_like(term: str) -> str:
    return term.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", r"\%").replace("_", r"\_")


def like_contains(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, its wildcards taken literally."""
    return f"%{_escape_like(term)}%"


def _labels_filter(labels: Sequence[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return cast(IncidentRow.labels, JSONB).op("?|")(literal(list(labels), ARRAY(String)))
    elements = func.json_each(IncidentRow.labels).table_valued("value")
    return exists(select(literal(1)).select_from(elements).where(elements.c.value.in_(labels)))


def _note_matches(text: str, dialect: str) -> ColumnElement[bool]:
    note = IncidentNoteRow.text
    if dialect == "postgresql":
        return note.ilike(like_contains(text), escape=_LIKE_ESCAPE)
    if text.isascii():
        # SQLite's LIKE already ignores ASCII case, in C and without a function call.
        return note.like(like_contains(text), escape=_LIKE_ESCAPE)
    # casefold() is a Python call per row, 4x the cost of LIKE: let LIKE drop most
    # rows first, with each non-ASCII letter as "_" (one character, any case).
    # Exact for letters whose case pairs are one character each (all of Vietnamese).
    rough_pattern = "%" + "".join(_escape_like(c) if c.isascii() else "_" for c in text) + "%"
    return and_(
        note.like(rough_pattern, escape=_LIKE_ESCAPE),
        func.casefold(note).like(like_contains(text.casefold()), escape=_LIKE_ESCAPE),
    )


def notes_statement(text: str, dialect: str, limit: int) -> Select[str]:
    """Ids of incidents with a note containing ``text`` (at most ``limit`` notes' worth)."""
    return select(IncidentNoteRow.incident_id).where(_note_matches(text, dialect)).limit(limit)


def _notes_filter(text: str, dialect: str, note_ids: Sequence[str] | None) -> ColumnElement[bool]:
    if note_ids is not None:
        return IncidentRow.id.in_(note_ids)
    return exists(
        select(literal(1)).where(
            IncidentNoteRow.incident_id == IncidentRow.id, _note_matches(text, dialect)
        )
    )


def _sort_key(sort: SortOrder) -> SQLColumnExpression[float]:
    return IncidentRow.peak_score if sort == "score" else IncidentRow.start_ts


def _after(cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after the cursor in the sort order.

    Spelled ``key <= k AND (key < k OR id < i)`` rather than a row-value
    comparison so that the bare ``key <= k`` bounds an index range on both DBs.
    """
    key = _sort_key(cursor.sort)
    if cursor.sort == "oldest":
        return and_(key >= cursor.key, or_(key > cursor.key, IncidentRow.id > cursor.id))
    return and_(key <= cursor.key, or_(key < cursor.key, IncidentRow.id < cursor.id))


def _conditions(
    query: IncidentQuery, dialect: str, note_ids: Sequence[str] | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.camera_ids:
        conditions.append(IncidentRow.camera_id.in_(query.camera_ids))
    if query.types:
        conditions.append(IncidentRow.type.in_(query.types))
    if query.since_ts is not None:
        conditions.append(IncidentRow.start_ts >= query.since_ts)
    if query.until_ts is not None:
        conditions.append(IncidentRow.start_ts < query.until_ts)
    if query.labels:
        conditions.append(_labels_filter(query.labels, dialect))
    if query.zones:
        conditions.append(IncidentRow.zone.in_(query.zones))
    if query.statuses:
        conditions.append(IncidentRow.status.in_(query.statuses))
    if query.min_score is not None:
        conditions.append(IncidentRow.peak_score >= query.min_score)
    if query.assignee is not None:
        conditions.append(IncidentRow.assignee == query.assignee)
    if query.evidence_locked is not None:
        conditions.append(IncidentRow.evidence_locked == query.evidence_locked)
    if query.text:
        conditions.append(_notes_filter(query.text, dialect, note_ids))
    if query.after is not None:
        if query.after.sort != query.sort:
            raise InvalidCursorError(f"made for sort={query.after.sort}, not sort={query.sort}")
        conditions.append(_after(query.after))
    return conditions


def _order(entity: Any, sort: SortOrder) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    key = entity.peak_score if sort == "score" else entity.start_ts
    if sort == "oldest":
        return key.asc(), entity.id.asc()
    return key.desc(), entity.id.desc()


def _split_column(query: IncidentQuery) -> tuple[SQLColumnExpression[str], Sequence[str]] | None:
    """The "any of" list to run as one branch per value, if a time sort needs it.

    ``camera_id IN (a, b) ORDER BY start_ts`` cannot follow the (camera_id, start_ts)
    index in order, so both planners fetch every row of every camera and sort
    them: 400 ms for two busy cameras out of a million incidents. One branch per
    camera each follows the index and stops at ``limit``; the union is merged.
    """
    if query.sort == "score":
        return None  # no (x, peak_score) index to follow: the score index is walked instead
    for column, values in (
        (IncidentRow.camera_id, query.camera_ids),
        (IncidentRow.status, query.statuses),
        (IncidentRow.type, query.types),
    ):
        if len(values) > 1:
            return column, values
    return None


def search_statement(
    query: IncidentQuery, dialect: str, note_ids: Sequence[str] | None = None
) -> Select[IncidentRow]:
    """The SELECT for one page of ``query`` on ``dialect`` ("sqlite" or "postgresql").

    ``note_ids``: the incidents whose notes match ``query.text``, when the caller
    looked them up first (few matches); None tests the notes per incident instead.
    """
    conditions = _conditions(query, dialect, note_ids)
    order = _order(IncidentRow, query.sort)
    if note_ids is not None:
        # At most NOTE_IDS_CAP rows: fetch them by id first, then sort. A plain
        # query let PostgreSQL walk the start_ts index backwards testing every row
        # against the id list (150 ms); MATERIALIZED keeps both DBs from that.
        matches = select(IncidentRow).where(*conditions).cte("noted").prefix_with("MATERIALIZED")
        row = aliased(IncidentRow, matches)
        return select(row).order_by(*_order(row, query.sort)).limit(query.limit)
    split = _split_column(query)
    if split is None:
        return select(IncidentRow).where(*conditions).order_by(*order).limit(query.limit)
    column, values = split
    branches = [
        select(IncidentRow)
        .where(*conditions, column == value)
        .order_by(*order)
        .limit(query.limit)
        .subquery()
        for value in values
    ]
    merged = union_all(*(select(branch) for branch in branches)).subquery()
    row = aliased(IncidentRow, merged)
    return select(row).order_by(*_order(row, query.sort)).limit(query.limit)


NOTE_IDS_CAP = 2000


def run_search(
    session: Session, query: IncidentQuery, note_ids_cap: int = NOTE_IDS_CAP
) -> list[IncidentRow]:
    """One page of ``query``: the plan that suits how many notes match ``query.text``.

    A rare term (a plate, a name) matches few notes: their incident ids are looked
    up first and the page is drawn from those. A common one would make that list
    long, but then walking incidents in sort order finds a page of matches soon.
    Either way no plan scans a million incidents for a handful of hits.
    """
    dialect = session.get_bind().dialect.name
    note_ids: list[str] | None = None
    if query.text:
        # Count notes, not incidents: a scan cut short by the LIMIT is not all of them.
        found = session.scalars(notes_statement(query.text, dialect, note_ids_cap + 1)).all()
        note_ids = sorted(set(found)) if len(found) <= note_ids_cap else None
    return list(session.scalars(search_statement(query, dialect, note_ids)))


# -- counts per camera / local day / type ------------------------------------------

DAY_S = 86400


def utc_offsets(tz: ZoneInfo, since_ts: float, until_ts: float) -> list[tuple[float, int]]:
    """``(from_ts, offset_s)`` pieces covering ``[since_ts, until_ts)``, one per UTC offset.

    One piece for a zone without DST (Asia/Ho_Chi_Minh); otherwise the transitions
    are found by probing every 6 hours and bisecting to the second (transitions are
    far rarer than that, and whole seconds in tzdata).
    """

    def offset(ts: float) -> int:
        delta = datetime.fromtimestamp(ts, tz).utcoffset() or timedelta(0)
        return int(delta.total_seconds())

    pieces = [(since_ts, offset(since_ts))]
    probe = since_ts
    while probe < until_ts:
        nxt = min(probe + 6 * 3600, until_ts)
        if offset(nxt) != pieces[-1][1]:
            lo, hi = probe, nxt  # offset(lo) is the current one, offset(hi) the next
            while hi - lo > 1:
                mid = math.floor((lo + hi) / 2)
                lo, hi = (mid, hi) if offset(mid) == pieces[-1][1] else (lo, mid)
            pieces.append((hi, offset(hi)))
        probe = nxt
    return [p for p in pieces if p[0] < until_ts]


def local_day_expr(tz: ZoneInfo, since_ts: float, until_ts: float) -> ColumnElement[Any]:
    """The local day of ``start_ts`` as whole days since 1970-01-01 (local calendar).

    ``floor((start_ts + offset) / 86400)`` with the offset in force at that instant,
    a CASE over the offset pieces of the window: exact for any zone on both DBs.
    """
    pieces = utc_offsets(tz, since_ts, until_ts)
    shifted: ColumnElement[Any]
    if len(pieces) == 1:
        shifted = IncidentRow.start_ts + pieces[0][1]
    else:
        whens = [
            (IncidentRow.start_ts < nxt_from, IncidentRow.start_ts + off)
            for (_from, off), (nxt_from, _) in itertools.pairwise(pieces)
        ]
        shifted = case(*whens, else_=IncidentRow.start_ts + pieces[-1][1])
    return func.floor(shifted / DAY_S)


_GROUP_COLUMNS: dict[str, SQLColumnExpression[Any]] = {
    "camera": IncidentRow.camera_id,
    "type": IncidentRow.type,
}


def count_statement(
    since_ts: float, until_ts: float, group_by: Sequence[GroupKey], tz: ZoneInfo
) -> Select[Any]:
    """Counts of incidents that started in ``[since_ts, until_ts)`` per ``group_by``.

    The columns are the group keys in the given order (the day as days since the
    epoch, local calendar), then the count as ``n``.
    """
    columns: list[Label[Any]] = []
    for key in group_by:
        expr = local_day_expr(tz, since_ts, until_ts) if key == "day" else _GROUP_COLUMNS[key]
        columns.append(expr.label(key))
    stmt = select(*columns, func.count().label("n")).where(
        IncidentRow.start_ts >= since_ts, IncidentRow.start_ts < until_ts
    )
    if columns:
        # By label: PostgreSQL binds each parameter apart, so a repeated day
        # expression would not be recognised as the grouped one.
        stmt = stmt.group_by(*group_by).order_by(*group_by)
    return stmt

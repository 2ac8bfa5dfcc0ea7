"""Many incidents with known distributions, and a brute-force filter to check search by.

``generate(n, seed)`` is deterministic (ids included), so a failing filter
combination can be replayed. ``bulk_insert`` writes with SQLAlchemy Core
``insert`` in chunks. ``matcher``/``ordered`` are the reference: a plain Python
reading of what each ``IncidentQuery`` field means. The search benchmark uses
the same data.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, insert

from core.storage.models import IncidentNoteRow, IncidentRow
from core.storage.search import IncidentQuery, SortOrder

T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC, a fixed origin: results do not drift
CAMERAS = tuple(f"cam-{i:02d}" for i in range(30))
CAMERA_WEIGHTS = tuple(1.0 / (i + 1) for i in range(30))  # a few busy cameras, a long tail
TYPES = {
    "intrusion": 0.35,
    "loitering": 0.15,
    "speeding": 0.15,
    "wrong_way": 0.10,
    "illegal_parking": 0.10,
    "crowding": 0.05,
    "line_crossing": 0.05,
    "tamper": 0.05,
}
LABELS = {"person": 0.5, "motorbike": 0.25, "car": 0.12, "truck": 0.05, "bicycle": 0.05}
RARE_LABELS = ("dog", "bus")  # each in about 1 % of incidents
ZONES: dict[str | None, float] = {
    None: 0.2,
    "yard": 0.25,
    "gate": 0.2,
    "road": 0.2,
    "market": 0.1,
    "school": 0.05,
}
STATUSES = {"new": 0.5, "acknowledged": 0.2, "confirmed": 0.1, "false_alarm": 0.15, "closed": 0.05}
ASSIGNEES: dict[str | None, float] = {None: 0.7, "anh": 0.1, "binh": 0.1, "chi": 0.05, "dung": 0.05}
NOTE_TEXTS = (
    "Đã liên hệ công an xã",
    "Xe máy không biển số, hướng về chợ",
    "Người lạ leo rào lúc nửa đêm",
    "False alarm: shadow of a tree",
    "Plate 59-X1 123.45 seen twice",
    "Giảm 50% tốc độ sau khi nhắc nhở",
    "cam_03 bị che khuất một phần",
    "Checked footage, nothing found",
    "Bảo vệ trường học đã xác nhận",
    "Trâu bò đi lạc vào đường",
)
NOTE_SHARE = 0.1  # incidents with at least one note
PLATE_SHARE = 0.3  # notes naming a plate: each plate is in about one note


@dataclass(frozen=True)
class Dataset:
    incidents: list[dict[str, Any]]
    notes: list[dict[str, Any]]

    @cached_property
    def starts(self) -> list[float]:
        return [r["start_ts"] for r in self.incidents]  # ascending: rows are in id order

    @cached_property
    def by_camera(self) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in self.incidents:
            rows.setdefault(row["camera_id"], []).append(row)
        return rows

    @cached_property
    def note_texts(self) -> dict[str, list[str]]:
        by_incident: dict[str, list[str]] = {}
        for note in self.notes:
            by_incident.setdefault(note["incident_id"], []).append(note["text"])
        return by_incident


def plate(rng: random.Random) -> str:
    """A Vietnamese-style plate, e.g. 59-X1 123.45: rare terms for notes search."""
    return (
        f"{rng.randint(11, 99)}-{rng.choice('ABCDEFGHKLMNPSTUVXYZ')}{rng.randint(1, 9)} "
        f"{rng.randint(100, 999)}.{rng.randint(10, 99)}"
    )


def _note_text(rng: random.Random) -> str:
    if rng.random() < PLATE_SHARE:
        return f"Biển số {plate(rng)} đi qua"
    return rng.choice(NOTE_TEXTS)


def _draw(rng: random.Random, weights: dict[Any, float], n: int) -> list[Any]:
    return rng.choices(list(weights), weights=list(weights.values()), k=n)


def generate(n: int, seed: int, span_s: float = 30 * 86400.0, grid_s: float = 10.0) -> Dataset:
    """``n`` incidents uniformly over ``span_s`` from ``T0``, in id (= time) order.

    Start times sit on a ``grid_s`` grid and scores on a 0.01 grid, so many rows
    share a sort key and pagination has to break ties by id.
    """
    rng = random.Random(seed)
    # Whole columns at once: a million rows in seconds, not a minute.
    cameras = rng.choices(CAMERAS, weights=CAMERA_WEIGHTS, k=n)
    types = _draw(rng, TYPES, n)
    zones = _draw(rng, ZONES, n)
    statuses = _draw(rng, STATUSES, n)
    assignees = _draw(rng, ASSIGNEES, n)
    first_labels = _draw(rng, LABELS, n)
    more_labels = _draw(rng, LABELS, 2 * n)
    slots = int(span_s / grid_s)
    incidents: list[dict[str, Any]] = []
    for i in range(n):
        start = T0 + grid_s * rng.randrange(slots)
        labels = {first_labels[i]}
        extra = rng.random()
        if extra < 0.5:  # half have two or three labels
            labels.update(more_labels[2 * i : 2 * i + (1 if extra < 0.35 else 2)])
        if extra > 0.98:
            labels.add(RARE_LABELS[i % 2])
        incidents.append(
            {
                "id": f"{int(start * 1000):012x}{rng.getrandbits(48):012x}",
                "camera_id": cameras[i],
                "rule": "r1",
                "type": types[i],
                "severity": ("low", "medium", "high")[i % 3],
                "labels": sorted(labels),
                "track_ids": [i % 1000],
                "zone": zones[i],
                "start_ts": start,
                "end_ts": start + 30.0,
                "peak_score": round(0.3 + 0.7 * rng.random(), 2),
                "clip_start_ts": start - 5.0,
                "clip_end_ts": start + 35.0,
                "status": statuses[i],
                "snapshot_path": None,
                "created_ts": start,
                "details": {},
                "evidence_locked": rng.random() < 0.03,
                "assignee": assignees[i],
                "false_alarm_category": None,
                "updated_ts": None,
            }
        )
    # Inserting in key order keeps every index append-mostly: several times faster.
    incidents.sort(key=lambda r: r["id"])
    notes: list[dict[str, Any]] = []
    for row in incidents:
        if rng.random() < NOTE_SHARE:
            for k in range(1 + (rng.random() < 0.5)):
                notes.append(
                    {
                        "incident_id": row["id"],
                        "ts": row["start_ts"] + 60.0 * (k + 1),
                        "author": "user:anh",
                        "text": _note_text(rng),
                    }
                )
    return Dataset(incidents, notes)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def bulk_insert(engine: Engine, data: Dataset, chunk: int = 5000) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # A bigger page cache for this connection: the indexes stay in memory.
            conn.exec_driver_sql("PRAGMA cache_size=-262144")
        for rows in _chunks(data.incidents, chunk):
            conn.execute(insert(IncidentRow), list(rows))
        for rows in _chunks(data.notes, chunk):
            conn.execute(insert(IncidentNoteRow), list(rows))


def matcher(query: IncidentQuery, notes: dict[str, list[str]]) -> Callable[[dict[str, Any]], bool]:
    """A predicate: does a row satisfy every filter of ``query``? (Not the cursor.)"""
    q = query
    cameras, types, zones = set(q.camera_ids), set(q.types), set(q.zones)
    labels, statuses = set(q.labels), set(q.statuses)
    term = q.text.casefold() if q.text else None

    def matches(row: dict[str, Any]) -> bool:
        if cameras and row["camera_id"] not in cameras:
            return False
        if types and row["type"] not in types:
            return False
        if q.since_ts is not None and row["start_ts"] < q.since_ts:
            return False
        if q.until_ts is not None and row["start_ts"] >= q.until_ts:
            return False
        if labels and labels.isdisjoint(row["labels"]):
            return False
        if zones and row["zone"] not in zones:
            return False
        if statuses and row["status"] not in statuses:
            return False
        if q.min_score is not None and row["peak_score"] < q.min_score:
            return False
        if q.assignee is not None and row["assignee"] != q.assignee:
            return False
        if q.evidence_locked is not None and row["evidence_locked"] != q.evidence_locked:
            return False
        return term is None or any(term in t.casefold() for t in notes.get(row["id"], ()))

    return matches


def ordered(rows: list[dict[str, Any]], sort: SortOrder) -> list[dict[str, Any]]:
    if sort == "oldest":
        return sorted(rows, key=lambda r: (r["start_ts"], r["id"]))
    key = "peak_score" if sort == "score" else "start_ts"
    return sorted(rows, key=lambda r: (r[key], r["id"]), reverse=True)


def expected_ids(data: Dataset, query: IncidentQuery) -> list[str]:
    """Every match of ``query`` (all pages), in its sort order."""
    matches = matcher(query, data.note_texts)
    # Fewer rows to test: the time slice (rows are in start order) or the cameras' rows.
    starts = data.starts
    lo = bisect_left(starts, query.since_ts) if query.since_ts is not None else 0
    hi = bisect_left(starts, query.until_ts) if query.until_ts is not None else len(starts)
    candidates = data.incidents[lo:hi]
    if query.camera_ids:
        by_camera = [r for c in set(query.camera_ids) for r in data.by_camera.get(c, ())]
        candidates = min(candidates, by_camera, key=len)
    return [r["id"] for r in ordered([r for r in candidates if matches(r)], query.sort)]

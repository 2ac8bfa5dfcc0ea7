"""Incidents left open by a stage that died: after ``kill -9`` (or a power cut) the
process that would have closed them is gone, and its successor starts with empty
memory. Without this they stay "ongoing" forever in the review queue.

- analytics closes, once it has run a few seconds, the frame-rule incidents that
  were opened before it started and that it does not know;
- ingest's camera_offline watch adopts the camera_offline incidents still open, so
  it closes them when the camera is back (or keeps them while it is still down)
  instead of opening a duplicate.

Both go through the single writer as ordinary ``IncidentUpdated`` events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import CameraConfig
from core.storage.models import IncidentRow
from core.types import IncidentUpdated, StoreEvent

log = logging.getLogger(__name__)

OFFLINE_TYPE = "camera_offline"
DEFAULT_POST_ROLL_S = 5.0


def open_offline_incidents(engine: Engine) -> dict[str, str]:
    """camera id → id of its newest camera_offline incident that is still open."""
    with Session(engine) as session:
        rows = session.execute(
            select(IncidentRow.camera_id, IncidentRow.id)
            .where(IncidentRow.type == OFFLINE_TYPE, IncidentRow.end_ts.is_(None))
            .order_by(IncidentRow.start_ts)
        ).all()
    return {camera_id: incident_id for camera_id, incident_id in rows}


def close_orphaned_incidents(
    engine: Engine,
    emit: Callable[[StoreEvent], None],
    started_ts: float,
    known_ids: Iterable[str],
    cameras: Iterable[CameraConfig],
    now_ts: float,
    only_cameras: Iterable[str] | None = None,
) -> list[str]:
    """Close frame-rule incidents created before ``started_ts`` and still open that
    this process (``known_ids``) does not track; returns their ids.

    Their real end was lost with the process that died; they end now, and say so.
    """
    known = set(known_ids)
    post_roll = {c.id: c.post_roll_s for c in cameras}
    with Session(engine) as session:
        rows = session.execute(
            select(IncidentRow.id, IncidentRow.camera_id, IncidentRow.start_ts).where(
                IncidentRow.end_ts.is_(None),
                IncidentRow.type != OFFLINE_TYPE,
                IncidentRow.created_ts < started_ts,
                *([] if only_cameras is None else [IncidentRow.camera_id.in_(list(only_cameras))]),
            )
        ).all()
    closed = []
    for incident_id, camera_id, start_ts in rows:
        if incident_id in known:
            continue
        end_ts = max(now_ts, start_ts)
        emit(
            IncidentUpdated(
                incident_id=incident_id,
                end_ts=end_ts,
                peak_score=0.0,
                track_ids=[],
                closed=True,
                clip_end_ts=end_ts + post_roll.get(camera_id, DEFAULT_POST_ROLL_S),
                details={"closed_by": "restart: the stage that tracked it had stopped"},
            )
        )
        closed.append(incident_id)
    if closed:
        log.warning("closed %d incident(s) left open by a stopped analytics", len(closed))
    return closed


class OrphanSweeps:
    """When analytics looks for orphans: ``at_s`` after it started, for every camera
    (one box); or, in a worker, ``at_s`` after each camera's frames start arriving
    (again after a gap of ``gap_s``): a camera taken over from a worker that died."""

    def __init__(self, at_s: tuple[float, ...], per_camera: bool, gap_s: float = 5.0) -> None:
        self._at_s = at_s
        self._per_camera = per_camera
        self._gap_s = gap_s
        self._last_seen: dict[str, float] = {}
        # (due, monotonic; incidents created before, wall; cameras, None for all)
        self._due: list[tuple[float, float, tuple[str, ...] | None]] = []
        if not per_camera:
            now, wall = time.monotonic(), time.time()
            self._due = [(now + s, wall, None) for s in at_s]

    def saw(self, camera_id: str, now_monotonic: float, now_ts: float) -> None:
        if not self._per_camera:
            return
        last = self._last_seen.get(camera_id)
        self._last_seen[camera_id] = now_monotonic
        if last is None or now_monotonic - last > self._gap_s:
            self._due.extend((now_monotonic + s, now_ts, (camera_id,)) for s in self._at_s)

    def due(self, now_monotonic: float) -> list[tuple[float, tuple[str, ...] | None]]:
        """(created before, cameras) of each sweep that is due now."""
        ready = [d for d in self._due if d[0] <= now_monotonic]
        self._due = [d for d in self._due if d[0] > now_monotonic]
        return [(since, cameras) for _due, since, cameras in ready]

"""The single writer: the only code that writes pipeline events (incidents, counts,
the segment index) to the DB and media folder.

Order matters: the snapshot file, then the row, then the alert. A client that
receives an alert can always fetch the row and the snapshot it names.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.storage.models import IncidentRow, TrafficCountRow, row_dict
from core.storage.segments import SegmentIndex
from core.types import (
    IncidentOpened,
    IncidentUpdated,
    SegmentClosed,
    StoreEvent,
    TrafficCounts,
)

log = logging.getLogger(__name__)


class IncidentPublisher(Protocol):
    def publish_incident(self, kind: str, payload: dict[str, Any]) -> object: ...


def snapshot_relpath(camera_id: str, incident_id: str, start_ts: float) -> Path:
    day = time.strftime("%Y%m%d", time.gmtime(start_ts))
    return Path("snapshots") / camera_id / day / f"{incident_id}.jpg"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class IncidentWriter:
    def __init__(self, engine: Engine, media_root: Path, publisher: IncidentPublisher) -> None:
        self._engine = engine
        self._media_root = media_root
        self._publisher = publisher
        self._segments = SegmentIndex(engine)

    def handle(self, event: StoreEvent) -> None:
        if isinstance(event, IncidentOpened):
            self._opened(event)
        elif isinstance(event, TrafficCounts):
            self._counts(event)
        elif isinstance(event, SegmentClosed):
            self._segments.add(event)
        else:
            self._updated(event)

    def _counts(self, event: TrafficCounts) -> None:
        """Add to the stored buckets (a bucket may arrive in several flushes)."""
        with Session(self._engine) as session, session.begin():
            for item in event.items:
                key = (item.camera_id, item.line, item.label, item.direction, item.bucket_start_ts)
                row = session.get(TrafficCountRow, key)
                if row is None:
                    session.add(
                        TrafficCountRow(
                            camera_id=item.camera_id,
                            line=item.line,
                            label=item.label,
                            direction=item.direction,
                            bucket_start_ts=item.bucket_start_ts,
                            bucket_s=item.bucket_s,
                            count=item.count,
                        )
                    )
                else:
                    row.count += item.count

    def _opened(self, event: IncidentOpened) -> None:
        incident = event.incident
        if event.snapshot_jpeg:
            rel = snapshot_relpath(incident.camera_id, incident.id, incident.start_ts)
            write_atomically(self._media_root / rel, event.snapshot_jpeg)
            incident.snapshot_path = str(rel)
        row = IncidentRow.from_incident(incident)
        with Session(self._engine) as session, session.begin():
            # A retry after a failed commit finds no row; one that finds it (the
            # commit went through, its reply did not) must not insert it twice.
            if session.get(IncidentRow, incident.id) is None:
                session.add(row)
        self._publisher.publish_incident("opened", incident.to_json_dict())
        log.info("incident %s %s on %s", incident.id, incident.rule, incident.camera_id)

    def _updated(self, event: IncidentUpdated) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(IncidentRow, event.incident_id)
            if row is None:
                log.warning("update for unknown incident %s dropped", event.incident_id)
                return
            row.end_ts = event.end_ts
            row.peak_score = max(row.peak_score, event.peak_score)
            row.track_ids = sorted(set(row.track_ids) | set(event.track_ids))
            if event.clip_end_ts is not None:
                row.clip_end_ts = event.clip_end_ts
            if event.details:
                row.details = {**(row.details or {}), **event.details}
            payload = row_dict(row)
        self._publisher.publish_incident("closed" if event.closed else "updated", payload)

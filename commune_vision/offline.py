"""The camera_offline rule: an incident when a camera stays out of ``online``.

It runs in the ingest process, where camera health lives; a camera that is
down sends no frames, so no frame-driven rule could notice it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from core.config import CameraConfig
from core.rule_config import CameraOfflineRule
from core.types import (
    CameraHealth,
    CameraState,
    Incident,
    IncidentOpened,
    IncidentUpdated,
    StoreEvent,
    new_incident_id,
)
from vision.annotate import annotate_snapshot

log = logging.getLogger(__name__)

_UP = (CameraState.ONLINE, CameraState.CONNECTING)


class OfflineWatch:
    def __init__(
        self, emit: Callable[[StoreEvent], None], adopt: dict[str, str] | None = None
    ) -> None:
        """``adopt``: camera id → its camera_offline incident still open in the database
        (left by an ingest that died): closed once the camera is online, kept while it
        is down, so a restart neither orphans it nor opens a duplicate."""
        self._emit = emit
        self._down_since: dict[str, float] = {}
        self._open: dict[str, str] = dict(adopt or {})
        self._adopted = set(self._open)

    def check(self, cameras: Iterable[tuple[CameraConfig, CameraHealth]], now_ts: float) -> None:
        for camera, health in cameras:
            rule = next((r for r in camera.rules if isinstance(r, CameraOfflineRule)), None)
            if rule is None:
                if camera.id in self._adopted:  # the rule was removed meanwhile
                    self._close(camera.id, now_ts)
                continue
            if health.state in _UP:
                self._down_since.pop(camera.id, None)
                if health.state == CameraState.CONNECTING and camera.id in self._adopted:
                    continue  # an adopted incident waits to see whether it is back
                self._close(camera.id, now_ts)
                continue
            since = self._down_since.setdefault(camera.id, now_ts)
            if camera.id not in self._open and now_ts - since >= rule.after_s:
                self._opened(camera, rule, health, since)

    def adopt(self, open_incidents: dict[str, str]) -> None:
        """Cameras this worker took over: their camera_offline incidents still open
        (left by the worker that held them) are closed or kept here, not duplicated."""
        for camera_id, incident_id in open_incidents.items():
            if camera_id not in self._open:
                self._open[camera_id] = incident_id
                self._adopted.add(camera_id)

    def forget(self, camera_ids: list[str]) -> None:
        """Cameras handed to another worker: it adopts their open incident; closing
        it here would say the camera is back when nobody has looked."""
        for camera_id in camera_ids:
            self._open.pop(camera_id, None)
            self._adopted.discard(camera_id)
            self._down_since.pop(camera_id, None)

    def _close(self, camera_id: str, now_ts: float) -> None:
        self._adopted.discard(camera_id)
        incident_id = self._open.pop(camera_id, None)
        if incident_id is not None:
            self._emit(IncidentUpdated(incident_id, now_ts, 1.0, [], True, now_ts))

    def _opened(
        self, camera: CameraConfig, rule: CameraOfflineRule, health: CameraHealth, since: float
    ) -> None:
        incident_id = new_incident_id(since)
        self._open[camera.id] = incident_id
        blank = np.full((360, 640, 3), 40, np.uint8)
        caption = f"{camera.id}: {health.state.value} - {health.last_error or 'no frames'}"
        jpeg = annotate_snapshot(blank, None, True, None, caption[:70], since)
        incident = Incident(
            id=incident_id,
            camera_id=camera.id,
            rule=rule.name,
            type="camera_offline",
            severity=rule.severity,
            labels=[],
            track_ids=[],
            zone=None,
            start_ts=since,
            end_ts=None,
            peak_score=1.0,
            clip_start_ts=since,
            clip_end_ts=None,
            details={"state": health.state.value, "error": health.last_error or ""},
        )
        log.warning("camera %s offline since %.0f: incident %s", camera.id, since, incident_id)
        self._emit(IncidentOpened(incident, jpeg))

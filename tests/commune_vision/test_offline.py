"""camera_offline: opens after the camera has been down for after_s, closes when it is back."""

from __future__ import annotations

import cv2
import numpy as np

from commune_vision.offline import OfflineWatch
from core.config import CameraConfig
from core.types import CameraHealth, CameraState, IncidentOpened, IncidentUpdated, StoreEvent

CAM = CameraConfig.model_validate(
    {
        "id": "gate",
        "url": "rtsp://cam/1",
        "rules": [{"type": "camera_offline", "name": "gate-down", "after_s": 30}],
    }
)
PLAIN = CameraConfig.model_validate({"id": "plain", "url": "rtsp://cam/2"})


def test_offline_for_after_s_opens_then_back_online_closes() -> None:
    events: list[StoreEvent] = []
    watch = OfflineWatch(events.append)
    health = CameraHealth("gate", state=CameraState.ONLINE)
    other = CameraHealth("plain", state=CameraState.OFFLINE)
    watch.check([(CAM, health), (PLAIN, other)], 1000.0)
    health.state, health.last_error = CameraState.OFFLINE, "connection refused"
    for t in (1001.0, 1020.0, 1030.5, 1031.0):
        watch.check([(CAM, health), (PLAIN, other)], t)
    assert len(events) == 1 and isinstance(events[0], IncidentOpened)
    incident = events[0].incident
    assert incident.type == "camera_offline" and incident.start_ts == 1001.0
    assert incident.severity == "high" and incident.details["state"] == "offline"
    image = cv2.imdecode(np.frombuffer(events[0].snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    watch.check([(CAM, health)], 1100.0)  # still down: no second incident
    assert len(events) == 1
    health.state = CameraState.ONLINE
    watch.check([(CAM, health)], 1200.0)
    assert isinstance(events[1], IncidentUpdated) and events[1].closed
    assert events[1].incident_id == incident.id and events[1].end_ts == 1200.0


def test_a_short_outage_is_not_an_incident() -> None:
    events: list[StoreEvent] = []
    watch = OfflineWatch(events.append)
    health = CameraHealth("gate", state=CameraState.STALLED)
    watch.check([(CAM, health)], 1000.0)
    health.state = CameraState.ONLINE
    watch.check([(CAM, health)], 1010.0)
    health.state = CameraState.OFFLINE
    watch.check([(CAM, health)], 1020.0)
    watch.check([(CAM, health)], 1045.0)  # 25 s since it went down again
    assert events == []


def test_an_adopted_incident_is_kept_while_down_and_closed_when_back() -> None:
    """An ingest killed while a camera was down left its incident open: the next one
    continues it (no duplicate) and closes it when the camera is online again."""
    events: list[StoreEvent] = []
    watch = OfflineWatch(events.append, adopt={"gate": "left-open"})
    health = CameraHealth("gate")  # connecting: not known yet whether it is back
    watch.check([(CAM, health)], 1000.0)
    health.state = CameraState.OFFLINE
    for t in (1001.0, 1100.0):
        watch.check([(CAM, health)], t)
    assert events == []
    health.state = CameraState.ONLINE
    watch.check([(CAM, health)], 1200.0)
    assert len(events) == 1 and isinstance(events[0], IncidentUpdated)
    assert events[0].incident_id == "left-open" and events[0].closed

"""Per-camera analytics: thresholds per class, and live reconfiguration that keeps
the tracker (ids) and unchanged rules' state."""

from __future__ import annotations

import numpy as np

from commune_vision.analytics import CameraAnalytics
from core.config import CameraConfig
from core.frames import FrameReader, FrameRing
from core.types import IncidentOpened, IncidentUpdated, StoreEvent
from vision.detections import Detections

BASE = {
    "id": "gate",
    "url": "x.mp4",
    "zones": [{"name": "right", "points": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}],
    "rules": [{"type": "intrusion", "name": "r", "zone": "right", "min_inside_s": 0.0}],
}


def _dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    arr = np.array(rows, np.float32).reshape(-1, 6)
    return Detections.untracked(arr[:, :4], arr[:, 4], arr[:, 5].astype(np.int32))


def test_class_filters_apply_and_change_live() -> None:
    events: list[StoreEvent] = []
    ring = FrameRing("gate", 100, 200, 8)
    reader = FrameReader()
    try:
        analytics = CameraAnalytics(CameraConfig.model_validate(BASE), reader, events.append)
        small_person = (150, 40, 156, 50, 0.9, 0)  # 60 px² in a 200x100 image: 0.3 %
        chair = (120, 40, 160, 90, 0.9, 56)
        for i in range(6):
            ref = ring.write(np.zeros((100, 200, 3), np.uint8), 1000.0 + i * 0.2)
            analytics.on_detections(ref, _dets([small_person, chair]))
        assert [type(e) for e in events] == [IncidentOpened]  # the person; never the chair
        tracker = analytics.tracker

        stricter = {**BASE, "filters": {"person": {"min_area": 0.01}}}
        analytics.reconfigure(CameraConfig.model_validate(stricter))
        assert analytics.tracker is tracker  # ids survive a threshold change
        kept = analytics._filter(_dets([small_person]), 200, 100)
        assert len(kept) == 0  # now too small to count
    finally:
        reader.close()
        ring.close()


def test_unchanged_rule_keeps_its_state_when_another_changes() -> None:
    config = CameraConfig.model_validate(
        {**BASE, "rules": [*BASE["rules"], {"type": "intrusion", "name": "r2", "zone": "right"}]}
    )
    analytics = CameraAnalytics(config, FrameReader(), lambda _e: None)
    first, second = (rule for _key, _cfg, rule in analytics.rules)
    changed = config.model_copy(
        update={"rules": [config.rules[0], config.rules[1].model_copy(update={"cooldown_s": 60})]}
    )
    analytics.reconfigure(changed)
    assert analytics.rules[0][2] is first and analytics.rules[1][2] is not second


def test_close_open_ends_every_open_incident() -> None:
    events: list[StoreEvent] = []
    ring = FrameRing("gate", 100, 200, 8)
    reader = FrameReader()
    try:
        analytics = CameraAnalytics(CameraConfig.model_validate(BASE), reader, events.append)
        person = (150, 40, 170, 90, 0.9, 0)
        for i in range(6):
            ref = ring.write(np.zeros((100, 200, 3), np.uint8), 1000.0 + i * 0.2)
            analytics.on_detections(ref, _dets([person]))
        assert [type(e) for e in events] == [IncidentOpened]
        analytics.close_open(analytics.last_ts)
        closed = events[-1]
        assert isinstance(closed, IncidentUpdated) and closed.closed
        assert closed.incident_id == events[0].incident.id  # type: ignore[union-attr]
        assert closed.end_ts == 1001.0
        analytics.close_open(1002.0)
        assert len(events) == 2  # nothing left open
    finally:
        reader.close()
        ring.close()

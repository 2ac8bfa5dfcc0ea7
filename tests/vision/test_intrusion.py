"""Intrusion rule on synthetic tracks. Table-driven: each case is a list of frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.config import IntrusionRule as IntrusionConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, PixelZone
from vision.rules.intrusion import IntrusionRule

W, H = 100, 100
# The zone is the right half of the image.
ZONE = PixelZone("right", [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)])
PERSON, CAR = 0, 2


@dataclass
class Obj:
    track_id: int
    x: float  # ground point x in pixels; the box is 10 px wide, ground at y=80
    class_id: int = PERSON
    score: float = 0.8


def _dets(objs: list[Obj]) -> Detections:
    if not objs:
        return Detections.empty()
    xyxy = np.array([[o.x - 5, 40, o.x + 5, 80] for o in objs], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in objs], np.float32),
        class_id=np.array([o.class_id for o in objs], np.int32),
        tracker_id=np.array([o.track_id for o in objs], np.int32),
    )


def _ctx(
    dets: Detections, ts: float, live: set[int], local_day_s: float = 12 * 3600.0
) -> FrameContext:
    return FrameContext(dets, ts, W, H, live, local_day_s)


def _run(
    frames: list[list[Obj]], cfg: dict[str, object], fps: float = 5.0
) -> list[tuple[str, int, float]]:
    config = IntrusionConfig.model_validate(
        {"type": "intrusion", "name": "r", "zone": "right", "classes": ["person"], **cfg}
    )
    rule = IntrusionRule(config, ZONE)
    events: list[tuple[str, int, float]] = []
    for i, objs in enumerate(frames):
        ts = 1000.0 + i / fps
        live = {o.track_id for o in objs if o.track_id >= 0}
        for e in rule.update(_ctx(_dets(objs), ts, live)):
            events.append((e.kind, e.track_ids[0], round(e.ts - 1000.0, 2)))
    return events


def walk(track_id: int, xs: Sequence[float], **kw: object) -> list[list[Obj]]:
    return [[Obj(track_id, x, **kw)] for x in xs]  # type: ignore[arg-type]


CASES = [
    ("stays outside", walk(1, [10] * 20), {}, []),
    (
        "enters, stays, leaves",
        walk(1, [10] * 3 + [80] * 10 + [10] * 10),
        {"min_inside_s": 0.4},
        [("opened", 1, 1.0), ("closed", 1, 2.4)],
    ),
    (
        "brief entry below min_inside_s",
        walk(1, [10, 80, 10, 10, 10, 10, 10]),
        {"min_inside_s": 0.5},
        [],
    ),
    (
        "flicker on the border opens one incident only",
        walk(1, [49, 51] * 25),
        {"min_inside_s": 0.4},
        [("opened", 1, 0.6)],
    ),
    ("a car is not a person", walk(1, [80] * 10, class_id=CAR), {}, []),
    ("low confidence ignored", walk(1, [80] * 10, score=0.2), {"min_confidence": 0.35}, []),
    ("unconfirmed track ignored", walk(-1, [80] * 10), {}, []),
    (
        "track lost inside closes the incident",
        walk(1, [80] * 5) + [[]] * 3,
        {"min_inside_s": 0.0},
        [("opened", 1, 0.0), ("closed", 1, 1.0)],
    ),
    (
        "re-entry within cooldown does not fire again",
        walk(1, [80] * 3 + [10] * 8 + [80] * 5),
        {"min_inside_s": 0.0, "cooldown_s": 30},
        [("opened", 1, 0.0), ("closed", 1, 0.4)],
    ),
    (
        "re-entry after cooldown fires again",
        walk(1, [80] * 3 + [10] * 8 + [80] * 5),
        {"min_inside_s": 0.0, "cooldown_s": 0.5},
        [("opened", 1, 0.0), ("closed", 1, 0.4), ("opened", 1, 2.2)],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_intrusion(
    frames: list[list[Obj]], cfg: dict[str, object], expected: list[tuple[str, int, float]]
) -> None:
    assert _run(frames, cfg) == expected


def test_two_people_two_incidents() -> None:
    frames = [[Obj(1, 80), Obj(2, 90)] for _ in range(5)]
    events = _run(frames, {"min_inside_s": 0.0})
    assert sorted(e[1] for e in events if e[0] == "opened") == [1, 2]


def test_state_of_finished_tracks_is_evicted() -> None:
    config = IntrusionConfig.model_validate(
        {"type": "intrusion", "name": "r", "zone": "right", "min_inside_s": 0.0}
    )
    rule = IntrusionRule(config, ZONE)
    for i in range(200):  # 200 short-lived tracks pass through
        rule.update(_ctx(_dets([Obj(i, 80)]), 1000.0 + i, {i}))
    rule.update(_ctx(Detections.empty(), 2000.0, set()))
    assert rule._tracks == {}


@pytest.mark.parametrize(
    ("local_time", "fires"),
    [
        ("23:30", True),
        ("02:00", True),
        ("04:59", True),
        ("05:00", False),
        ("12:00", False),
        ("21:59", False),
        ("22:00", True),
    ],
)
def test_schedule_window_across_midnight(local_time: str, fires: bool) -> None:
    config = IntrusionConfig.model_validate(
        {
            "type": "intrusion",
            "name": "night",
            "zone": "right",
            "min_inside_s": 0.0,
            "schedule": [{"start": "22:00", "end": "05:00"}],
        }
    )
    rule = IntrusionRule(config, ZONE)
    hours, minutes = (int(v) for v in local_time.split(":"))
    events = rule.update(_ctx(_dets([Obj(1, 80)]), 1000.0, {1}, hours * 3600.0 + minutes * 60.0))
    assert bool(events) is fires

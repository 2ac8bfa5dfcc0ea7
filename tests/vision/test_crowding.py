"""Crowding rule on synthetic frames. Table-driven: each case is a list of timed frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.rule_config import CrowdingRule as CrowdingConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, PixelZone
from vision.rules.crowding import CrowdingRule, _ZoneState

W, H = 100, 100
# The zone is the right half of the image.
ZONE = PixelZone("right", [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)])
PERSON, CAR = 0, 2
T0 = 1000.0
NOON = 12 * 3600.0


@dataclass
class Obj:
    track_id: int
    x: float  # ground point x in pixels; the box is 4 px wide, feet at y=80
    class_id: int = PERSON
    score: float = 0.8


Frame = tuple[float, list[Obj]]  # (seconds from T0, objects)
Event = tuple[str, float, int, int]  # kind, ts from T0, details count, len(track_ids)


def people(inside: int, outside: int = 0, class_id: int = PERSON, score: float = 0.8) -> list[Obj]:
    """``inside`` people in the zone (ids 1..), ``outside`` people left of it (ids 101..)."""
    return [Obj(1 + k, 60 + 4 * k, class_id, score) for k in range(inside)] + [
        Obj(101 + k, 10 + 4 * k, class_id, score) for k in range(outside)
    ]


def counts(
    values: Sequence[int], dt: float = 0.2, class_id: int = PERSON, score: float = 0.8
) -> list[Frame]:
    """One frame per value, that many people in the zone, at 5 fps (``dt``)."""
    return [(round(k * dt, 3), people(n, 0, class_id, score)) for k, n in enumerate(values)]


def _dets(objs: list[Obj]) -> Detections:
    if not objs:
        return Detections.empty()
    xyxy = np.array([[o.x - 2, 40, o.x + 2, 80] for o in objs], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in objs], np.float32),
        class_id=np.array([o.class_id for o in objs], np.int32),
        tracker_id=np.array([o.track_id for o in objs], np.int32),
    )


def _config(**cfg: object) -> CrowdingConfig:
    base: dict[str, object] = {
        "type": "crowding",
        "name": "r",
        "zone": "right",
        "min_count": 4,
        "min_duration_s": 3,
    }
    return CrowdingConfig.model_validate({**base, **cfg})


def _run(frames: Sequence[Frame], cfg: Mapping[str, object], day_s: float = NOON) -> list[Event]:
    rule = CrowdingRule(_config(**cfg), ZONE)
    events: list[Event] = []
    for t, objs in frames:
        live = {o.track_id for o in objs if o.track_id >= 0}
        ctx = FrameContext(_dets(objs), T0 + t, W, H, live, (day_s + t) % 86400.0)
        for e in rule.update(ctx):
            assert (e.key, e.zone, e.rule_type) == ("zone", "right", "crowding")
            count = int(e.details["count"])
            events.append((e.kind, round(e.ts - T0, 2), count, len(e.track_ids)))
    return events


CASES: list[tuple[str, list[Frame], dict[str, object], list[Event]]] = [
    ("below min_count never fires", counts([3] * 50), {}, []),
    ("min_count for exactly min_duration_s fires", counts([4] * 16), {}, [("opened", 3.0, 4, 4)]),
    ("one frame short of min_duration_s", counts([4] * 15), {}, []),
    (
        "people outside the zone do not count",
        [(k * 0.2, people(3, outside=3)) for k in range(30)],
        {},
        [],
    ),
    (
        "count flickering 4/3 every frame keeps the crowd",
        counts([4, 3] * 20),
        {},
        [("opened", 3.2, 4, 4)],
    ),
    (
        "flicker below min_count for 1.6 s keeps the incident; 2 s below closes it",
        counts([4] * 20 + [3] * 9 + [4] * 10 + [2] * 15),
        {},
        [("opened", 3.0, 4, 4), ("closed", 7.6, 4, 4)],
    ),
    (
        "a dip of the grace before min_duration_s restarts the duration",
        counts([4] * 10 + [3] * 11 + [4] * 16),
        {},
        [("opened", 7.2, 4, 4)],
    ),
    (
        "peak count is reported; people of the frame in track_ids",
        counts([4] * 16 + [6] * 5 + [5] * 5 + [0] * 11),
        {},
        [("opened", 3.0, 4, 4), ("closed", 5.0, 6, 5)],
    ),
    (
        "frames 3 s apart: one short frame is a dip",
        [(0, people(4)), (3, people(3)), (6, people(4))],
        {"min_duration_s": 5},
        [("opened", 6.0, 4, 4)],
    ),
    (
        "frames 3 s apart: two short frames end the crowd",
        [
            (0, people(4)),
            (3, people(3)),
            (6, people(3)),
            (9, people(4)),
            (12, people(4)),
            (15, people(4)),
        ],
        {"min_duration_s": 5},
        [("opened", 15.0, 4, 4)],
    ),
    ("cars are not people", counts([6] * 30, class_id=CAR), {}, []),
    ("low confidence ignored", counts([6] * 30, score=0.2), {"min_confidence": 0.35}, []),
    (
        "unconfirmed tracks ignored",
        [(k * 0.2, [Obj(-1, 60 + 4 * j) for j in range(6)]) for k in range(30)],
        {},
        [],
    ),
    (
        "a new crowd within the cooldown fires when it is over",
        counts([4] * 16 + [0] * 11 + [4] * 60),
        {"cooldown_s": 10},
        [("opened", 3.0, 4, 4), ("closed", 3.0, 4, 4), ("opened", 15.2, 4, 4)],
    ),
    (
        "a new crowd after the cooldown fires after min_duration_s",
        counts([4] * 16 + [0] * 11 + [4] * 16),
        {"cooldown_s": 1},
        [("opened", 3.0, 4, 4), ("closed", 3.0, 4, 4), ("opened", 8.4, 4, 4)],
    ),
    (
        "min_duration_s 0 fires on the first frame",
        counts([4]),
        {"min_duration_s": 0},
        [("opened", 0.0, 4, 4)],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_crowding(frames: list[Frame], cfg: dict[str, object], expected: list[Event]) -> None:
    assert _run(frames, cfg) == expected


def test_event_lists_the_people_and_their_union_box() -> None:
    rule = CrowdingRule(_config(min_duration_s=0), ZONE)
    objs = [Obj(7, 60), Obj(3, 70, score=0.6), Obj(9, 90), Obj(5, 80), Obj(11, 20)]
    (event,) = rule.update(FrameContext(_dets(objs), T0, W, H, {3, 5, 7, 9, 11}, NOON))
    assert event.track_ids == (3, 5, 7, 9)  # not 11: outside the zone
    assert event.xyxy == (58.0, 40.0, 92.0, 80.0)
    assert (event.label, event.start_ts) == ("person", T0)
    assert event.score == pytest.approx(0.75)  # mean confidence of the crowd


def test_no_state_grows_with_short_tracks() -> None:
    rule = CrowdingRule(_config(), ZONE)
    for i in range(200):  # 200 short-lived tracks pass through, one at a time
        rule.update(FrameContext(_dets([Obj(i, 80)]), T0 + i, W, H, {i}, NOON))
    rule.update(FrameContext(Detections.empty(), T0 + 300, W, H, set(), NOON))
    assert rule._state == _ZoneState()


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
    hours, minutes = (int(v) for v in local_time.split(":"))
    day_s = hours * 3600.0 + minutes * 60.0 - 3.0  # the crowd has lasted 3 s at that time
    events = _run(counts([5] * 16), {"schedule": [{"start": "22:00", "end": "05:00"}]}, day_s)
    assert bool(events) is fires

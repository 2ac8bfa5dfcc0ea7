"""Wrong-way rule on synthetic tracks. Table-driven: each case is a list of frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.rule_config import Calibration
from core.rule_config import WrongWayRule as WrongWayConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, GroundPlane, PixelZone, RuleEvent
from vision.rules.wrong_way import WrongWayRule

W, H = 100, 100  # diagonal 141.42 px
# The lane: x 20..80, y 5..95; traffic is allowed downwards (+y).
LANE = PixelZone("lane", [(0.2, 0.05), (0.8, 0.05), (0.8, 0.95), (0.2, 0.95)])
PERSON, CAR = 0, 2
FPS = 5.0
# 1 px = 0.5 m both ways: the whole 100 px image is a 50 m square.
HALF_METRE = Calibration(
    image_points=[(0, 0), (1, 0), (1, 1), (0, 1)],
    world_points_m=[(0, 0), (50, 0), (50, 50), (0, 50)],
)
# x: 1 m per px, y: 0.1 m per px; moving 50 px up is 5 m, not 50 m or 0.35 diagonals.
SQUASHED = Calibration(
    image_points=[(0, 0), (1, 0), (1, 1), (0, 1)],
    world_points_m=[(0, 0), (100, 0), (100, 10), (0, 10)],
)

Frame = list["Obj"]
Seen = tuple[str, int, float]  # (kind, track id, seconds from the start)


@dataclass
class Obj:
    track_id: int
    y: float  # ground point (bottom centre) in pixels; the box is 20 x 20 above it
    x: float = 50.0
    class_id: int = CAR
    score: float = 0.8


def _dets(objs: Sequence[Obj]) -> Detections:
    if not objs:
        return Detections.empty()
    xyxy = np.array([[o.x - 10, o.y - 20, o.x + 10, o.y] for o in objs], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in objs], np.float32),
        class_id=np.array([o.class_id for o in objs], np.int32),
        tracker_id=np.array([o.track_id for o in objs], np.int32),
    )


def _rule(cfg: dict[str, object], calibration: Calibration | None = None) -> WrongWayRule:
    config = WrongWayConfig.model_validate(
        {
            "type": "wrong_way",
            "name": "r",
            "zone": "lane",
            "allowed_direction": (0.0, 2.0),  # not a unit vector: the rule normalises it
            "min_distance": 0.1,  # 14.14 px without calibration
            "min_duration_s": 1.0,
            **cfg,
        }
    )
    return WrongWayRule(config, LANE, GroundPlane(calibration) if calibration else None)


def _events(
    frames: Sequence[Frame], cfg: dict[str, object], calibration: Calibration | None = None
) -> list[RuleEvent]:
    rule = _rule(cfg, calibration)
    events: list[RuleEvent] = []
    for i, objs in enumerate(frames):
        live = {o.track_id for o in objs if o.track_id >= 0}
        events += rule.update(FrameContext(_dets(objs), 1000.0 + i / FPS, W, H, live, 43200.0))
    return events


def _run(
    frames: Sequence[Frame], cfg: dict[str, object], calibration: Calibration | None = None
) -> list[Seen]:
    return [
        (e.kind, e.track_ids[0], round(e.ts - 1000.0, 2)) for e in _events(frames, cfg, calibration)
    ]


def drive(track_id: int, ys: Sequence[float], class_id: int = CAR, x: float = 50.0) -> list[Frame]:
    return [[Obj(track_id, y, x, class_id)] for y in ys]


def steps(start: float, step: float, count: int) -> list[float]:
    return [start + step * k for k in range(count)]


UP = steps(90, -5, 18)  # 90 → 5 px: against the flow at 25 px/s, leaves the lane at the top
DOWN = UP[::-1]
HOLD = 10  # frames (2 s) at rest, long enough for the median to settle

CASES: list[tuple[str, list[Frame], dict[str, object], Calibration | None, list[Seen]]] = [
    # Smoothed (median of the last 5) positions 90, 87.5, 85, 82.5, 80, 75, 70: the move
    # starts at 0.2 s (87.5 is within 20 % of 14.14 px of the entry point) and is 20 px
    # long at 1.2 s.  y=5 is the lane's edge (outside); the track is dropped at 3.6 s.
    ("wrong way", [*drive(1, UP), []], {}, None, [("opened", 1, 1.2), ("closed", 1, 3.6)]),
    ("right way", drive(1, DOWN), {}, None, []),
    ("stationary", drive(1, [50.0] * 30), {}, None, []),
    # Jitter and glitches with no minimum duration: only the median keeps them quiet.
    (
        "stationary with box jitter of ±8 px (16 px peak to peak)",
        [[Obj(1, 50 + 8 * ((k * 7) % 3 - 1), 50 + 3 * ((k * 5) % 3 - 1))] for k in range(40)],
        {"min_duration_s": 0.0},
        None,
        [],
    ),
    (
        "stationary with a two-frame 30 px box glitch",
        drive(1, [50.0] * 8 + [20.0, 20.0] + [50.0] * 8),
        {"min_duration_s": 0.0},
        None,
        [],
    ),
    ("a person is not a vehicle", drive(1, UP, class_id=PERSON), {}, None, []),
    (
        "backs up 14 px (< 14.14) and stops: below min distance",
        drive(1, [50.0] * 3 + [43.0, 36.0] + [36.0] * HOLD),
        {},
        None,
        [],
    ),
    (
        # Smoothed: 50 up to 0.8 s (the move starts there), 43, then 35 at 1.2 s: fires at 1.8 s.
        "backs up 15 px and stops: fires once the move is 1 s old",
        drive(1, [50.0] * 3 + [43.0, 35.0] + [35.0] * HOLD),
        {},
        None,
        [("opened", 1, 1.8)],
    ),
    (
        "fast against the flow but out of the lane before min duration",
        drive(1, [90, 75, 60, 45, 30, 15, 0, 0, 0, 0]),
        {"min_duration_s": 1.5},
        None,
        [],
    ),
    (
        "turns round after driving with the flow: measured from the turning point",
        # Smoothed: 40 at 1.6-2.0 s (furthest down), then 35, 30, 25 (15 px back) at 2.6 s.
        # Measured from where it entered (10) it would never be against the flow.
        drive(1, steps(10, 5, 8) + steps(40, -5, 8)),
        {"min_duration_s": 0.5},
        None,
        [("opened", 1, 2.6)],
    ),
    (
        "calibrated 0.5 m/px: 19 px back is 9.5 m, below 10 m",
        drive(1, [60.0] * 3 + [50.0, 41.0] + [41.0] * HOLD),
        {"min_distance": 10.0},
        HALF_METRE,
        [],
    ),
    (
        "calibrated 0.5 m/px: 21 px back is 10.5 m, fires",
        drive(1, [60.0] * 3 + [50.0, 39.0] + [39.0] * HOLD),
        {"min_distance": 10.0},
        HALF_METRE,
        [("opened", 1, 1.8)],
    ),
    (
        "calibrated 0.1 m/px along the lane: 50 px back is 5 m, more than 4 m",
        # Smoothed: 85 at 0.2 s (0.5 m back: the move starts), 50 (4 m) at 1.2 s.
        drive(1, steps(90, -10, 6) + [40.0] * HOLD),
        {"min_distance": 4.0},
        SQUASHED,
        [("opened", 1, 1.2)],
    ),
    (
        "calibrated 0.1 m/px along the lane: 50 px back is 5 m, less than 6 m",
        drive(1, steps(90, -10, 6) + [40.0] * HOLD),
        {"min_distance": 6.0},
        SQUASHED,
        [],
    ),
    (
        "leaves the lane sideways: closed after the exit grace",
        drive(1, UP[:8]) + [[Obj(1, 55, 95)]] * 8,
        {},
        None,
        [("opened", 1, 1.2), ("closed", 1, 1.4)],  # last inside at 1.4 s, decided at 2.4 s
    ),
    (
        "re-enters within cooldown: one incident",
        drive(1, UP[:8]) + [[Obj(1, 55, 95)]] * 8 + drive(1, UP[:8]),
        {"cooldown_s": 30.0},
        None,
        [("opened", 1, 1.2), ("closed", 1, 1.4)],
    ),
    (
        "re-enters after cooldown: a second incident",
        drive(1, UP[:8]) + [[Obj(1, 55, 95)]] * 8 + drive(1, UP[:8]),
        {"cooldown_s": 1.0},  # closed at 2.4 s: quiet until 3.4 s; back in the lane at 3.2 s
        None,
        [("opened", 1, 1.2), ("closed", 1, 1.4), ("opened", 1, 4.4)],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "calibration", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_wrong_way(
    frames: list[Frame],
    cfg: dict[str, object],
    calibration: Calibration | None,
    expected: list[Seen],
) -> None:
    assert _run(frames, cfg, calibration) == expected


def test_event_details() -> None:
    frames = [*drive(1, [60.0] * 3 + [50.0, 39.0] + [39.0] * HOLD), []]
    opened, closed = _events(frames, {"min_distance": 10.0}, HALF_METRE)
    assert opened.key == closed.key == "track:1"
    assert opened.zone == "lane" and opened.label == "car" and opened.rule_type == "wrong_way"
    assert opened.details["unit"] == "m"
    assert opened.details["distance"] == pytest.approx(10.5, abs=1e-3)
    assert closed.start_ts == opened.ts


def test_uncalibrated_distance_is_a_share_of_the_diagonal() -> None:
    frames = drive(1, [60.0] * 3 + [50.0, 39.0] + [39.0] * HOLD)
    (opened,) = _events(frames, {})
    assert opened.details["unit"] == "diagonal"
    assert opened.details["distance"] == pytest.approx(21 / np.hypot(W, H), abs=1e-6)


def test_two_vehicles_one_each_way() -> None:
    frames = [[Obj(1, up), Obj(2, down, x=30)] for up, down in zip(UP, DOWN, strict=True)]
    assert [(k, t) for k, t, _ in _run(frames, {})] == [("opened", 1)]


def test_zero_direction_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match=r"allowed_direction must not be \[0, 0\]"):
        WrongWayConfig.model_validate(
            {"type": "wrong_way", "name": "r", "zone": "lane", "allowed_direction": (0, 0)}
        )


def test_state_of_finished_tracks_is_evicted() -> None:
    rule = _rule({"min_duration_s": 0.0})
    ts = 1000.0
    for tid in range(200):  # 200 short tracks, half of them backing up
        for y in (80, 40) if tid % 2 else (40, 80):
            rule.update(FrameContext(_dets([Obj(tid, y)]), ts, W, H, {tid}, 43200.0))
            ts += 1 / FPS
    events = rule.update(FrameContext(Detections.empty(), ts, W, H, set(), 43200.0))
    assert rule._tracks == {}
    assert [e.kind for e in events] == ["closed"]  # the last one was still open

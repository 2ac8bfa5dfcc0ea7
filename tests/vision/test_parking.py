"""Illegal parking rule on synthetic tracks. Table-driven: each case is a list of timed frames.

The image is 200x100 px; a car's box is 20 px long (a ~4.5 m car: 1 m ≈ 4.4 px),
its ground point at y=80.  Default ``max_speed`` 0.02 image widths/s = 4 px/s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.rule_config import Calibration
from core.rule_config import IllegalParkingRule as IllegalParkingConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, GroundPlane, PixelZone
from vision.rules.parking import IllegalParkingRule

W, H = 200, 100
# The no-parking zone is the right half of the image.
ZONE = PixelZone("kerb", [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)])
PERSON, CAR, TRUCK = 0, 2, 7
T0 = 1000.0
NOON = 12 * 3600.0
FPS_DT = 0.2
# 1 px = 0.2 m on the ground, in both directions.
GROUND = GroundPlane(
    Calibration(
        image_points=[(0, 0), (1, 0), (1, 1), (0, 1)],
        world_points_m=[(0, 0), (40, 0), (40, 20), (0, 20)],
    )
)


@dataclass
class Obj:
    track_id: int
    x: float | None  # ground point x in pixels; None: the track is live but not detected
    class_id: int = CAR
    score: float = 0.8


Frame = tuple[float, list[Obj]]  # (seconds from T0, objects)
Event = tuple[str, int, float, float]  # kind, track, ts from T0, stopped_s


def _dets(objs: list[Obj]) -> Detections:
    seen = [o for o in objs if o.x is not None]
    if not seen:
        return Detections.empty()
    xyxy = np.array([[o.x - 10, 70, o.x + 10, 80] for o in seen if o.x is not None], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in seen], np.float32),
        class_id=np.array([o.class_id for o in seen], np.int32),
        tracker_id=np.array([o.track_id for o in seen], np.int32),
    )


def _config(**cfg: object) -> IllegalParkingConfig:
    base: dict[str, object] = {
        "type": "illegal_parking",
        "name": "r",
        "zone": "kerb",
        "min_stopped_s": 10,
    }
    return IllegalParkingConfig.model_validate({**base, **cfg})


def _run(
    frames: Sequence[Frame],
    cfg: Mapping[str, object],
    ground: GroundPlane | None = None,
    day_s: float = NOON,
    **options: float,
) -> list[Event]:
    rule = IllegalParkingRule(_config(**cfg), ZONE, ground, **options)
    events: list[Event] = []
    for t, objs in frames:
        live = {o.track_id for o in objs if o.track_id >= 0}
        ctx = FrameContext(_dets(objs), T0 + t, W, H, live, (day_s + t) % 86400.0)
        for e in rule.update(ctx):
            assert (e.key, e.zone) == (f"track:{e.track_ids[0]}", "kerb")
            stopped = float(e.details["stopped_s"])
            events.append((e.kind, e.track_ids[0], round(e.ts - T0, 2), round(stopped, 2)))
    return events


def path(
    track_id: int, xs: Sequence[float | None], t0: float = 0.0, dt: float = FPS_DT, **kw: object
) -> list[Frame]:
    """One object at 5 fps (``dt``) from ``t0``."""
    return [(round(t0 + k * dt, 3), [Obj(track_id, x, **kw)]) for k, x in enumerate(xs)]  # type: ignore[arg-type]


def at(track_id: int, points: Sequence[tuple[float, float | None]]) -> list[Frame]:
    """One object at explicit times: irregular frame gaps."""
    return [(t, [Obj(track_id, x)]) for t, x in points]


def still(x: float, seconds: float) -> list[float | None]:
    return [x] * round(seconds / FPS_DT)


def drive(x0: float, x1: float, px_per_s: float) -> list[float | None]:
    """Positions from x0 towards x1 (excluded) at a constant speed, one per frame."""
    n = round(abs(x1 - x0) / px_per_s / FPS_DT)
    return [float(v) for v in np.linspace(x0, x1, n, endpoint=False)]


_rng = np.random.default_rng(7)
JITTER = [float(v) for v in 150 + _rng.uniform(-3, 3, 90)]  # ±3 px box jitter, 18 s

CASES: list[tuple[str, list[Frame], dict[str, object], list[Event]]] = [
    # The stop is dated from the start of the first slow 1 s+ window: the first frame.
    ("parked car fires at min_stopped_s", path(1, still(150, 15)), {}, [("opened", 1, 10.0, 10.0)]),
    ("one frame short of min_stopped_s", path(1, still(150, 10)), {}, []),
    ("parked car with ±3 px box jitter", path(1, JITTER), {}, [("opened", 1, 10.0, 10.0)]),
    ("passing car (0.1 widths/s)", path(1, drive(0, 200, 20)), {}, []),
    ("slow passing car (0.03 widths/s)", path(1, drive(100, 200, 6)), {}, []),
    (
        "car stopping 10 s at a light, then driving on: no incident at 20 s",
        path(1, drive(100, 150, 20) + still(150, 10) + drive(150, 200, 20)),
        {"min_stopped_s": 20},
        [],
    ),
    (
        "the 10 s at the light measure about 10 s: none at 12 s either",
        path(1, drive(100, 150, 20) + still(150, 10) + drive(150, 200, 20)),
        {"min_stopped_s": 12},
        [],
    ),
    (
        "the 10 s at the light measure about 10 s: fires at 9 s",
        path(1, drive(100, 150, 20) + still(150, 10) + drive(150, 200, 20)),
        {"min_stopped_s": 9},
        [("opened", 1, 11.4, 9.0)],  # stopped since arrival at 2.4 s,
    ),
    (
        "parked car shunts 1 m (4 px) forward and back: the timer goes on",
        path(1, still(150, 5) + drive(150, 154, 8) + drive(154, 150, 8) + still(150, 10)),
        {},
        [("opened", 1, 10.0, 10.0)],
    ),
    (
        "parked car shunts 2 m (9 px) and stays there: the timer goes on",
        path(1, still(150, 5) + drive(150, 159, 9) + still(159, 10)),
        {},
        [("opened", 1, 10.0, 10.0)],
    ),
    (
        "box jumps 30 px for 1 s (occlusion): the timer goes on",
        path(1, still(150, 5) + still(180, 1) + still(150, 10)),
        {},
        [("opened", 1, 10.0, 10.0)],
    ),
    (
        "creeping forward by a car length in a queue restarts the timer",
        path(1, still(150, 6) + drive(150, 170, 5) + still(170, 7)),
        {},
        [],
    ),
    (
        "drives off after the incident: closed when the move is confirmed",
        path(1, still(180, 12) + drive(180, 110, 20) + still(110, 5)),
        {},
        [("opened", 1, 10.0, 10.0), ("closed", 1, 12.4, 12.4)],
    ),
    (
        "frames 3 s apart (motion gate refresh): fires at the first frame past min_stopped_s",
        at(1, [(t, 150) for t in range(0, 16, 3)]),
        {},
        [("opened", 1, 12.0, 12.0)],
    ),
    (
        "frames 3 s apart: one displaced frame is ignored, live but undetected frames too",
        at(1, [(0, 150), (3, 150), (6, 175), (9, 150), (12, None), (13.5, None), (15, 150)]),
        {},
        [("opened", 1, 15.0, 15.0)],
    ),
    (
        "frames 3 s apart: displaced twice is a move",
        at(1, [(0, 150), (3, 150), (6, 175), (9, 175), (12, 175), (15, 175)]),
        {},
        [],
    ),
    (
        "ground point briefly (1.6 s) outside the zone keeps the stop",
        path(1, still(102, 4) + still(98, 1.8) + still(102, 6)),
        {},
        [("opened", 1, 10.0, 10.0)],
    ),
    (
        "parked just outside the zone",
        path(1, still(95, 20)),
        {},
        [],
    ),
    (
        "dropped by the tracker: closed at the last still frame",
        [*path(1, still(150, 12)), (13.0, [])],
        {},
        [("opened", 1, 10.0, 10.0), ("closed", 1, 11.8, 11.8)],
    ),
    ("a person is not a vehicle", path(1, still(150, 15), class_id=PERSON), {}, []),
    ("trucks only: a car is ignored", path(1, still(150, 15)), {"classes": ["truck"]}, []),
    (
        "trucks only: a truck fires",
        path(1, still(150, 15), class_id=TRUCK),
        {"classes": ["truck"]},
        [("opened", 1, 10.0, 10.0)],
    ),
    ("low confidence ignored", path(1, still(150, 15), score=0.2), {"min_confidence": 0.35}, []),
    ("unconfirmed track ignored", path(-1, still(150, 15)), {}, []),
    (
        "parks again within the cooldown: fires when the cooldown is over",
        path(1, still(180, 11) + drive(180, 120, 20) + still(120, 30)),
        {"cooldown_s": 20},
        # The move is confirmed at 15.2 s (displaced from 12.2 s + 3 s): cooldown to 35.2 s;
        # parked again since 14.0 s.
        [("opened", 1, 10.0, 10.0), ("closed", 1, 11.4, 11.4), ("opened", 1, 35.2, 21.2)],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_parking(frames: list[Frame], cfg: dict[str, object], expected: list[Event]) -> None:
    assert _run(frames, cfg) == expected


def test_two_parked_cars_two_incidents_and_a_passing_one_none() -> None:
    passing = drive(0, 200, 20)
    frames = [
        (
            k * FPS_DT,
            [Obj(1, 120), Obj(2, 170)] + ([Obj(3, passing[k])] if k < len(passing) else []),
        )
        for k in range(60)
    ]
    events = _run(frames, {})
    assert sorted(e[1] for e in events if e[0] == "opened") == [1, 2]


def test_opened_event_carries_box_label_and_peak_score() -> None:
    rule = IllegalParkingRule(_config(min_stopped_s=2), ZONE, None)
    events = []
    for k in range(12):
        dets = _dets([Obj(4, 140, class_id=TRUCK, score=0.6)])
        events += rule.update(FrameContext(dets, T0 + k * FPS_DT, W, H, {4}, NOON))
    (event,) = events
    assert (event.kind, event.label, event.xyxy) == ("opened", "truck", (130, 70, 150, 80))
    assert event.start_ts == pytest.approx(T0 + 2)
    assert event.score == pytest.approx(0.6)


# A car creeping at 2 px/s: 0.01 image widths/s, or 0.4 m/s = 1.44 km/h on the ground.
# A huge shift tolerance keeps the displacement check out of the way: speed decides alone.
@pytest.mark.parametrize(
    ("ground", "max_speed", "fires"),
    [(None, 0.011, True), (None, 0.009, False), (GROUND, 1.5, True), (GROUND, 1.3, False)],
    ids=["image 0.011 w/s", "image 0.009 w/s", "ground 1.5 km/h", "ground 1.3 km/h"],
)
def test_speed_in_km_h_with_calibration_else_image_widths(
    ground: GroundPlane | None, max_speed: float, fires: bool
) -> None:
    frames = path(1, drive(110, 150, 2))
    key = "max_speed_kmh" if ground is not None else "max_speed"
    events = _run(frames, {key: max_speed}, ground, shift_tolerance=100.0)
    assert bool(events) is fires


def test_calibrated_rule_fires_for_a_parked_car_and_not_a_passing_one() -> None:
    cfg = {"max_speed_kmh": 3.0}
    assert _run(path(1, still(150, 12)), cfg, GROUND) == [("opened", 1, 10.0, 10.0)]
    assert _run(path(1, drive(100, 200, 10)), cfg, GROUND) == []  # 7.2 km/h


def test_state_of_finished_tracks_is_evicted() -> None:
    rule = IllegalParkingRule(_config(min_stopped_s=1), ZONE, None)
    for i in range(200):  # 200 short-lived tracks, each seen a few times
        for k in range(3):
            rule.update(FrameContext(_dets([Obj(i, 150)]), T0 + i * 10 + k, W, H, {i}, NOON))
    rule.update(FrameContext(Detections.empty(), T0 + 5000, W, H, set(), NOON))
    assert rule._tracks == {}


def test_samples_kept_per_track_are_bounded() -> None:
    rule = IllegalParkingRule(_config(), ZONE, None)
    for k in range(1000):  # 200 s at 5 fps
        rule.update(FrameContext(_dets([Obj(1, 150)]), T0 + k * FPS_DT, W, H, {1}, NOON))
    assert len(rule._tracks[1].samples) <= 25  # window 3 s + smoothing 1 s at 5 fps


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
    day_s = hours * 3600.0 + minutes * 60.0 - 10.0  # stopped for 10 s at that time
    cfg = {"schedule": [{"start": "22:00", "end": "05:00"}]}
    assert bool(_run(path(1, still(150, 10.2)), cfg, day_s=day_s)) is fires

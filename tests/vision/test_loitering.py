"""Loitering rule on synthetic tracks. Table-driven: each case is a list of timed frames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.rule_config import LoiteringRule as LoiteringConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, PixelZone
from vision.rules.loitering import LoiteringRule

W, H = 100, 100
# The zone is the right half of the image.
ZONE = PixelZone("right", [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)])
PERSON, CAR = 0, 2
T0 = 1000.0
NOON = 12 * 3600.0
IN, OUT = 80.0, 10.0


@dataclass
class Obj:
    track_id: int
    x: float | None  # ground point x in pixels (box 10 px wide, feet at y=80); None: live, unseen
    class_id: int = PERSON
    score: float = 0.8


Frame = tuple[float, list[Obj]]  # (seconds from T0, objects)
Event = tuple[str, int, float, float]  # kind, track, ts from T0, dwell_s


def _dets(objs: list[Obj]) -> Detections:
    seen = [o for o in objs if o.x is not None]
    if not seen:
        return Detections.empty()
    xyxy = np.array([[o.x - 5, 40, o.x + 5, 80] for o in seen if o.x is not None], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in seen], np.float32),
        class_id=np.array([o.class_id for o in seen], np.int32),
        tracker_id=np.array([o.track_id for o in seen], np.int32),
    )


def _config(**cfg: object) -> LoiteringConfig:
    base: dict[str, object] = {"type": "loitering", "name": "r", "zone": "right", "min_dwell_s": 3}
    return LoiteringConfig.model_validate({**base, **cfg})


def _run(frames: Sequence[Frame], cfg: Mapping[str, object], day_s: float = NOON) -> list[Event]:
    rule = LoiteringRule(_config(**cfg), ZONE)
    events: list[Event] = []
    for t, objs in frames:
        live = {o.track_id for o in objs if o.track_id >= 0}
        ctx = FrameContext(_dets(objs), T0 + t, W, H, live, (day_s + t) % 86400.0)
        for e in rule.update(ctx):
            assert e.key == f"track:{e.track_ids[0]}" and e.zone == "right"
            events.append(
                (e.kind, e.track_ids[0], round(e.ts - T0, 2), float(e.details["dwell_s"]))
            )
    return events


def walk(
    track_id: int, xs: Sequence[float | None], t0: float = 0.0, dt: float = 0.2, **kw: object
) -> list[Frame]:
    """One object at 5 fps (``dt``) from ``t0``."""
    return [(round(t0 + k * dt, 3), [Obj(track_id, x, **kw)]) for k, x in enumerate(xs)]  # type: ignore[arg-type]


def at(track_id: int, points: Sequence[tuple[float, float | None]]) -> list[Frame]:
    """One object at explicit times: irregular frame gaps."""
    return [(t, [Obj(track_id, x)]) for t, x in points]


CASES: list[tuple[str, list[Frame], dict[str, object], list[Event]]] = [
    ("stays outside", walk(1, [OUT] * 30), {}, []),
    ("dwell exactly min_dwell_s fires", walk(1, [IN] * 16), {}, [("opened", 1, 3.0, 3.0)]),
    ("one frame short of min_dwell_s", walk(1, [IN] * 15), {}, []),
    (
        "brief exit (1.6 s seen outside) keeps the dwell from the first entry",
        walk(1, [IN] * 10 + [OUT] * 9 + [IN] * 5),
        {},
        [("opened", 1, 3.8, 3.8)],
    ),
    (
        "exit seen for the grace (2 s) resets the dwell; it restarts at re-entry",
        walk(1, [IN] * 10 + [OUT] * 11 + [IN] * 16),
        {},
        [("opened", 1, 7.2, 3.0)],
    ),
    (
        "leaves after opening: closed at the last frame inside once the exit is confirmed",
        walk(1, [IN] * 20 + [OUT] * 15),
        {},
        [("opened", 1, 3.0, 3.0), ("closed", 1, 3.8, 3.8)],
    ),
    (
        "frames 3 s apart: one frame outside is a brief exit",
        at(1, [(0, IN), (3, IN), (6, OUT), (9, IN), (12, IN)]),
        {"min_dwell_s": 10},
        [("opened", 1, 12.0, 12.0)],
    ),
    (
        "frames 3 s apart: two frames outside reset",
        at(1, [(0, IN), (3, IN), (6, OUT), (9, OUT), (12, IN), (15, IN), (18, IN), (21, IN)]),
        {"min_dwell_s": 10},
        [],
    ),
    (
        "missed detections of a live track keep the dwell",
        walk(1, [IN] * 5 + [None] * 8 + [IN] * 5),
        {},
        [("opened", 1, 3.0, 3.0)],
    ),
    (
        "track dropped by the tracker closes the incident",
        [*walk(1, [IN] * 20), (4.0, [])],
        {},
        [("opened", 1, 3.0, 3.0), ("closed", 1, 3.8, 3.8)],
    ),
    ("a car is not a person", walk(1, [IN] * 30, class_id=CAR), {}, []),
    ("low confidence ignored", walk(1, [IN] * 30, score=0.2), {"min_confidence": 0.35}, []),
    ("unconfirmed track ignored", walk(-1, [IN] * 30), {}, []),
    (
        "re-entry (5.4 s) within cooldown fires only when the cooldown is over",
        walk(1, [IN] * 16 + [OUT] * 11 + [IN] * 60),
        {"cooldown_s": 10},
        [("opened", 1, 3.0, 3.0), ("closed", 1, 3.0, 3.0), ("opened", 1, 15.2, 9.8)],
    ),
    (
        "re-entry after cooldown fires after a new dwell",
        walk(1, [IN] * 16 + [OUT] * 11 + [IN] * 16),
        {"cooldown_s": 1},
        [("opened", 1, 3.0, 3.0), ("closed", 1, 3.0, 3.0), ("opened", 1, 8.4, 3.0)],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_loitering(frames: list[Frame], cfg: dict[str, object], expected: list[Event]) -> None:
    assert _run(frames, cfg) == expected


def test_two_people_two_incidents() -> None:
    frames = [(k * 0.2, [Obj(1, 80), Obj(2, 90), Obj(3, 10)]) for k in range(20)]
    events = _run(frames, {})
    assert sorted(e[1] for e in events if e[0] == "opened") == [1, 2]


def test_opened_event_carries_box_label_and_score() -> None:
    rule = LoiteringRule(_config(min_dwell_s=1), ZONE)
    events = []
    for k in range(6):
        events += rule.update(
            FrameContext(_dets([Obj(4, 70, score=0.6)]), T0 + k * 0.2, W, H, {4}, NOON)
        )
    (event,) = events
    assert (event.kind, event.label, event.xyxy, event.start_ts) == (
        "opened",
        "person",
        (65, 40, 75, 80),
        T0 + 1,
    )
    assert event.score == pytest.approx(0.6)


def test_state_of_finished_tracks_is_evicted() -> None:
    rule = LoiteringRule(_config(min_dwell_s=0.5), ZONE)
    for i in range(200):  # 200 short-lived tracks pass through
        rule.update(FrameContext(_dets([Obj(i, IN)]), T0 + i, W, H, {i}, NOON))
    rule.update(FrameContext(Detections.empty(), T0 + 300, W, H, set(), NOON))
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
    hours, minutes = (int(v) for v in local_time.split(":"))
    # The person has dwelt 3 s at the given time of day.
    day_s = hours * 3600.0 + minutes * 60.0 - 3.0
    frames = walk(1, [IN] * 16)
    events = _run(frames, {"schedule": [{"start": "22:00", "end": "05:00"}]}, day_s=day_s)
    assert bool(events) is fires


def test_dwell_before_the_window_fires_when_it_opens() -> None:
    # In the zone from 21:59:00; the night window opens at 22:00 with 60 s of dwell.
    frames = walk(1, [IN] * 61, dt=1.0)
    events = _run(
        frames, {"schedule": [{"start": "22:00", "end": "05:00"}]}, day_s=22 * 3600.0 - 60
    )
    assert events == [("opened", 1, 60.0, 60.0)]

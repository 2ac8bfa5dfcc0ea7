"""Line crossing rule on synthetic tracks. Table-driven: each case is a list of frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from core.rule_config import LineCrossingRule as LineCrossingConfig
from vision.detections import Detections
from vision.rules.base import FrameContext, PixelLine, RuleEvent
from vision.rules.line_crossing import LineCrossingRule

W, H = 100, 100  # diagonal 141.4 px
# A vertical segment x=50, y 20..80, drawn upwards: its right (positive, "in") side is x > 50.
LINE = PixelLine("gate", [(0.5, 0.8), (0.5, 0.2)])
PERSON, CAR, TRUCK = 0, 2, 7
BAND = 0.05  # hysteresis of most cases: 7.07 px either side of the line
FPS = 5.0

Frame = list["Obj"]
Counted = tuple[int, str]  # (track id, direction)


@dataclass
class Obj:
    track_id: int
    x: float  # ground point (bottom centre) in pixels; the box is 10 x 30 above it
    y: float = 50.0
    class_id: int = PERSON
    score: float = 0.8


def _dets(objs: Sequence[Obj]) -> Detections:
    if not objs:
        return Detections.empty()
    xyxy = np.array([[o.x - 5, o.y - 30, o.x + 5, o.y] for o in objs], np.float32)
    return Detections(
        xyxy=xyxy,
        confidence=np.array([o.score for o in objs], np.float32),
        class_id=np.array([o.class_id for o in objs], np.int32),
        tracker_id=np.array([o.track_id for o in objs], np.int32),
    )


def _rule(cfg: dict[str, object]) -> LineCrossingRule:
    config = LineCrossingConfig.model_validate(
        {"type": "line_crossing", "name": "r", "line": "gate", "hysteresis": BAND, **cfg}
    )
    return LineCrossingRule(config, LINE)


@dataclass
class Result:
    counted: list[Counted]
    labels: list[str]
    events: list[RuleEvent]


def _run(
    frames: Sequence[Frame],
    cfg: dict[str, object] | None = None,
    live: Sequence[set[int]] | None = None,
    local_day_s: float = 12 * 3600.0,
) -> Result:
    """Feed the frames at ``FPS``; live ids default to the ids seen in each frame."""
    rule = _rule(cfg or {})
    result = Result([], [], [])
    for i, objs in enumerate(frames):
        ids = live[i] if live is not None else {o.track_id for o in objs if o.track_id >= 0}
        ctx = FrameContext(_dets(objs), 1000.0 + i / FPS, W, H, ids, local_day_s)
        result.events += rule.update(ctx)
        for c in rule.drain_crossings():
            assert c.line == "gate"
            result.counted.append((c.track_id, c.direction))
            result.labels.append(c.label)
    return result


def walk(
    track_id: int, xs: Sequence[float], y: float = 50.0, class_id: int = PERSON, score: float = 0.8
) -> list[Frame]:
    return [[Obj(track_id, x, y, class_id, score)] for x in xs]


RIGHTWARDS = [20, 30, 40, 50, 60, 70, 80]
LEFTWARDS = RIGHTWARDS[::-1]

CASES: list[tuple[str, list[Frame], dict[str, object], list[Counted]]] = [
    ("clean crossing in", walk(1, RIGHTWARDS), {}, [(1, "in")]),
    ("clean crossing out", walk(1, LEFTWARDS), {}, [(1, "out")]),
    ("one jump over the whole band", walk(1, [30, 30, 70, 70]), {}, [(1, "in")]),
    ("stays on one side", walk(1, [10, 20, 30, 40, 30, 20]), {}, []),
    (
        "flicker on the line, inside the band: no count",
        walk(1, [30] + [47, 53] * 20),
        {},
        [],
    ),
    (
        "flicker on the line, then on through: one count",
        walk(1, [30] + [47, 53] * 20 + [70]),
        {},
        [(1, "in")],
    ),
    (
        "flicker on the line with the default band (1.4 px): no count",
        walk(1, [30] + [49.2, 50.8] * 20),
        {"hysteresis": 0.01},
        [],
    ),
    (
        "back to its own side after touching the line: no count",
        walk(1, [30, 45, 55, 45, 30]),
        {},
        [],
    ),
    (
        "a track born in the band has no side to come from",
        walk(1, [52, 60, 70, 80]),
        {},
        [],
    ),
    (
        "direction filter in: crossing in counts",
        walk(1, RIGHTWARDS),
        {"direction": "in"},
        [(1, "in")],
    ),
    ("direction filter in: crossing out ignored", walk(1, LEFTWARDS), {"direction": "in"}, []),
    ("direction filter out: crossing in ignored", walk(1, RIGHTWARDS), {"direction": "out"}, []),
    (
        "direction filter out: crossing out counts",
        walk(1, LEFTWARDS),
        {"direction": "out"},
        [(1, "out")],
    ),
    ("crossing below the segment (y=90) is outside its extent", walk(1, RIGHTWARDS, y=90), {}, []),
    ("crossing above the segment (y=10) is outside its extent", walk(1, RIGHTWARDS, y=10), {}, []),
    ("crossing just inside the segment's end (y=79)", walk(1, RIGHTWARDS, y=79), {}, [(1, "in")]),
    (
        "a diagonal step that meets the extension, not the segment",
        [[Obj(1, 30, 95)], [Obj(1, 30, 95)], [Obj(1, 70, 70)], [Obj(1, 75, 70)]],
        {},
        [],
    ),
    (
        "in, out and in again: three real crossings",
        walk(1, RIGHTWARDS + LEFTWARDS + RIGHTWARDS),
        {},
        [(1, "in"), (1, "out"), (1, "in")],
    ),
    (
        "a car when counting people only",
        walk(1, RIGHTWARDS, class_id=CAR),
        {"classes": ["person"]},
        [],
    ),
    (
        "a car when counting cars",
        walk(1, RIGHTWARDS, class_id=CAR),
        {"classes": ["car"]},
        [(1, "in")],
    ),
    ("low confidence ignored", walk(1, RIGHTWARDS, score=0.2), {"min_confidence": 0.35}, []),
    ("unconfirmed track ignored", walk(-1, RIGHTWARDS), {}, []),
    (
        "two people crossing opposite ways",
        [[Obj(1, a), Obj(2, b)] for a, b in zip(RIGHTWARDS, LEFTWARDS, strict=True)],
        {},
        [(1, "in"), (2, "out")],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_line_crossing(
    frames: list[Frame], cfg: dict[str, object], expected: list[Counted]
) -> None:
    assert _run(frames, cfg).counted == expected


# ID switch: track 1 walks in from the left and is lost; track 2 takes over.
# ``live``: the ids the tracker still holds per frame (default: those seen).
NARROW: dict[str, object] = {"hysteresis": 0.02}  # 2.8 px: both sides within handover reach
SwitchCase = tuple[str, list[Frame], dict[str, object], list[set[int]] | None, list[Counted]]
SWITCH_CASES: list[SwitchCase] = [
    (
        "switch before the line: the new track counts the crossing",
        walk(1, [20, 30]) + walk(2, [40, 50, 60, 70]),
        {},
        None,
        [(2, "in")],
    ),
    (
        "switch after the crossing: counted once, by the first track",
        walk(1, [20, 30, 40, 50, 60]) + walk(2, [70, 80, 90]),
        {},
        None,
        [(1, "in")],
    ),
    (
        "switch inside the band: the new track continues the first one's crossing",
        walk(1, [20, 30, 40, 46]) + walk(2, [54, 60, 70]),
        {},
        None,
        [(2, "in")],
    ),
    (
        "switch as it enters the band: the new track continues",
        walk(1, [20, 30, 40]) + walk(2, [46, 54, 60, 70]),
        {},
        None,
        [(2, "in")],
    ),
    (
        "switch inside the band while the old id is still live, then it reappears",
        walk(1, [20, 30, 40, 46]) + walk(2, [54, 60, 70]) + walk(1, [60, 70]),
        {},
        [{1}, {1}, {1}, {1}, {1, 2}, {1, 2}, {1, 2}, {1, 2}, {1, 2}],
        [(2, "in")],
    ),
    (
        "lost in the band, new track already past it: continues",
        walk(1, [20, 30, 40, 48]) + walk(2, [58, 70]),
        NARROW,
        None,
        [(2, "in")],
    ),
    (
        "lost well on its side, new track well on the other: another object, not counted",
        walk(1, [20, 30, 40, 44]) + walk(2, [56, 70]),
        NARROW,
        None,
        [],
    ),
    (
        "new track too far from where the old one was lost: not counted (missed, not doubled)",
        walk(1, [20, 30, 40, 46]) + walk(2, [65, 70, 80]),
        {},
        None,
        [],
    ),
    (
        "new track after the handover window: not counted",
        walk(1, [20, 30, 40, 46]) + [[]] * 8 + walk(2, [54, 60, 70]),
        {},
        None,
        [],
    ),
    (
        "a person lost on the line does not hand over to a car",
        walk(1, [20, 30, 40, 46]) + walk(2, [54, 60, 70], class_id=CAR),
        {"classes": ["person", "car"]},
        None,
        [],
    ),
    (
        "both seen together are two objects, not a switch",
        [[Obj(1, 20)], [Obj(1, 46)], [Obj(1, 46), Obj(2, 54)], [Obj(2, 60)], [Obj(2, 70)]],
        {},
        None,
        [],
    ),
    (
        # New 3 is nearer to lost 1 than to lost 2, but new 4 can only be 1: pairs are
        # made nearest first over the frame, not in detection order.
        "two switches in one frame pair up nearest first",
        [[Obj(1, x, 50), Obj(2, x, 64)] for x in (20, 30, 40, 46)]
        + [[Obj(3, 54, 56), Obj(4, 54, 50)], [Obj(3, 70, 56), Obj(4, 70, 50)]],
        {},
        None,
        [(3, "in"), (4, "in")],
    ),
]


@pytest.mark.parametrize(
    ("frames", "cfg", "live", "expected"),
    [c[1:] for c in SWITCH_CASES],
    ids=[c[0] for c in SWITCH_CASES],
)
def test_id_switch_mid_crossing(
    frames: list[Frame],
    cfg: dict[str, object],
    live: list[set[int]] | None,
    expected: list[Counted],
) -> None:
    assert _run(frames, cfg, live=live).counted == expected


def test_incident_per_crossing() -> None:
    frames = walk(1, RIGHTWARDS + LEFTWARDS)
    result = _run(frames, {"incident": True, "cooldown_s": 0.0})
    assert [(e.kind, e.key, e.details["direction"]) for e in result.events] == [
        ("opened", "track:1:1", "in"),
        ("closed", "track:1:1", "in"),
        ("opened", "track:1:2", "out"),
        ("closed", "track:1:2", "out"),
    ]
    first = result.events[0]
    assert first.ts == first.start_ts == result.events[1].ts  # instantaneous
    assert first.zone == "gate" and first.track_ids == (1,) and first.label == "person"
    assert first.xyxy is not None and first.rule_type == "line_crossing"


def test_no_incident_unless_asked() -> None:
    result = _run(walk(1, RIGHTWARDS))
    assert result.counted == [(1, "in")] and result.events == []


def test_cooldown_limits_incidents_not_counts() -> None:
    frames = walk(1, RIGHTWARDS + LEFTWARDS + RIGHTWARDS)  # 3 crossings within 4 s
    result = _run(frames, {"incident": True, "cooldown_s": 10.0})
    assert len(result.counted) == 3
    assert [(e.kind, e.key) for e in result.events] == [
        ("opened", "track:1:1"),
        ("closed", "track:1:1"),
    ]


def test_label_is_the_tracks_majority_class() -> None:
    frames = walk(1, [20, 30, 40], class_id=CAR) + walk(1, [60], class_id=TRUCK)
    frames += walk(1, [70, 80], class_id=CAR)
    result = _run(frames, {"classes": ["car", "truck"]})
    assert result.counted == [(1, "in")] and result.labels == ["car"]


@pytest.mark.parametrize(("local_time_h", "counted"), [(23.0, 1), (12.0, 0)])
def test_schedule(local_time_h: float, counted: int) -> None:
    cfg: dict[str, object] = {"schedule": [{"start": "22:00", "end": "05:00"}]}
    result = _run(walk(1, RIGHTWARDS), cfg, local_day_s=local_time_h * 3600.0)
    assert len(result.counted) == counted


def test_drain_returns_each_crossing_once() -> None:
    rule = _rule({})
    for i, objs in enumerate(walk(1, RIGHTWARDS)):
        rule.update(FrameContext(_dets(objs), 1000.0 + i / FPS, W, H, {1}, 43200.0))
    assert len(rule.drain_crossings()) == 1
    assert rule.drain_crossings() == []


def test_state_of_finished_tracks_is_evicted() -> None:
    rule = _rule({})
    ts = 1000.0
    for tid in range(200):  # 200 short tracks: some cross, some stop in the band
        for x in (30, 46 if tid % 2 else 70):
            rule.update(FrameContext(_dets([Obj(tid, x)]), ts, W, H, {tid}, 43200.0))
            ts += 1 / FPS
    assert len(rule.drain_crossings()) == 100
    # Tracks lost mid-crossing wait out the handover window, then go too.
    rule.update(FrameContext(Detections.empty(), ts + 10.0, W, H, set(), 43200.0))
    assert rule._tracks == {}

"""How well ByteTrack keeps one id per object on real footage, without ground truth.

    python -m benchmarks.tracking [--fps 5 10] [--clips NAME ...]

Each clip is decoded with PyAV; every ``round(source_fps / fps)``-th frame is
kept (every 3rd of a 30 fps clip for 10 fps), detected with the int8 model,
filtered to the domain classes and tracked with ``vision.tracking.ObjectTracker``
on the frames' pts, as ``cv-analytics`` does.  Detections are computed once at
the highest fps asked for and subsampled for the lower ones.

Two kinds of id switch are counted, both reproducible from the trajectories:

- **fragment**: track A ends and a track B of the same label starts within
  ``FRAGMENT_GAP_S`` after A's last observation, its first centre within
  ``FRAGMENT_DIST_SIZES`` box sizes of A's last centre (size: the larger side
  of A's last box, i.e. the width of a car, the height of a person): most
  likely the same object under a new id.  Not when both move (faster than
  ``MOVING_SIZES_PER_S``) in opposite directions: one car leaving the view
  where another enters it.  Each track ends or starts at most one fragment
  (greedy, nearest first).
- **jump**: an observation lies more than ``JUMP_SIZES`` box sizes from both
  the constant-velocity prediction of the track's last step and that of its
  median velocity over the last ``JUMP_VELOCITY_STEPS`` steps: the id most
  likely moved to a neighbouring object (seen: a stopped car's id handed to
  the car behind it as it drove off).  The last step alone would count a
  one-frame detector glitch; the median alone, a car accelerating towards
  the camera (perspective).

Prints one JSON summary per clip and fps (see ``summarize``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from benchmarks.common import assets_dir
from vision.detections import Detections
from vision.detector.backend import create_backend
from vision.detector.detector import Detector
from vision.labels import COCO_TO_DOMAIN, DOMAIN_TO_COCO
from vision.tracking import ObjectTracker

CLIPS = ("intersection_cctv_day.mp4", "highway_overpass_day.mp4")
MODEL_DIR = "yolo11n_int8_openvino_model"
FRAGMENT_GAP_S = 1.0
FRAGMENT_DIST_SIZES = 1.5
JUMP_SIZES = 0.5
JUMP_VELOCITY_STEPS = 5
MOVING_SIZES_PER_S = 0.5
LONG_TRACK_S = 2.0
CROSSING_SHARE = 0.4  # a track "crosses" when its centre travels this share of the frame

_DOMAIN_CLASS_IDS = np.array(sorted(COCO_TO_DOMAIN), np.int32)
_CAR = DOMAIN_TO_COCO["car"]


@dataclass(frozen=True, slots=True)
class SampledClip:
    """Detections of the frames kept from one clip, in decode order."""

    name: str
    width: int
    height: int
    source_fps: float
    fps: float  # the sampling rate asked for
    step: int  # one kept frame every ``step`` decoded frames
    times: list[float]  # frame pts in seconds
    detections: list[Detections]

    def at(self, fps: float) -> SampledClip | None:
        """The same clip sampled at ``fps`` without new inference (5 fps from 10 fps), or
        None when that sampling does not keep a subset of these frames."""
        step = sampling_step(self.source_fps, fps)
        if step % self.step:
            return None
        k = step // self.step
        return replace(
            self, fps=fps, step=step, times=self.times[::k], detections=self.detections[::k]
        )


@dataclass(frozen=True, slots=True)
class Observation:
    t: float
    cx: float
    cy: float
    width: float
    height: float
    label: str

    @property
    def size(self) -> float:
        return max(self.width, self.height)


@dataclass(slots=True)
class Trajectory:
    track_id: int
    points: list[Observation] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.points[0].t

    @property
    def end(self) -> float:
        return self.points[-1].t

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        # ByteTrack matches boxes regardless of class, so a car may be a truck in a few frames.
        return Counter(p.label for p in self.points).most_common(1)[0][0]

    def travel(self) -> tuple[float, float]:
        """Extent of the centre's path along x and y, in pixels."""
        xs = [p.cx for p in self.points]
        ys = [p.cy for p in self.points]
        return max(xs) - min(xs), max(ys) - min(ys)


@dataclass(frozen=True, slots=True)
class TrackRun:
    clip: SampledClip
    tracked: list[Detections]  # tracker output per sampled frame, unconfirmed ids -1
    trajectories: dict[int, Trajectory]  # confirmed ids only

    @classmethod
    def from_tracked(cls, clip: SampledClip, tracked: list[Detections]) -> TrackRun:
        trajectories: dict[int, Trajectory] = {}
        for t, out in zip(clip.times, tracked, strict=True):
            for box, class_id, track_id in zip(out.xyxy, out.class_id, out.tracker_id, strict=True):
                if track_id < 0:
                    continue
                x1, y1, x2, y2 = (float(v) for v in box)
                label = COCO_TO_DOMAIN[int(class_id)]
                point = Observation(t, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, label)
                trajectories.setdefault(int(track_id), Trajectory(int(track_id))).points.append(
                    point
                )
        return cls(clip, tracked, trajectories)

    def crosses(self, trajectory: Trajectory) -> bool:
        dx, dy = trajectory.travel()
        return dx >= CROSSING_SHARE * self.clip.width or dy >= CROSSING_SHARE * self.clip.height


def make_detector(model_dir: Path, max_batch: int = 4) -> Detector:
    # The service's defaults (core/config.py DetectorConfig): 640x640, conf 0.25, IoU 0.45.
    backend = create_backend("openvino", model_dir, "cpu", (640, 640), max_batch)
    return Detector(backend, confidence_threshold=0.25, iou_threshold=0.45)


def sampling_step(source_fps: float, fps: float) -> int:
    return max(1, round(source_fps / fps))


def detect_clip(path: Path, detector: Detector, fps: float) -> SampledClip:
    """Decode ``path``, keep every ``sampling_step``-th frame and detect on it."""
    times: list[float] = []
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.average_rate is None:
            raise ValueError(f"{path.name}: no frame rate in the stream")
        source_fps = float(stream.average_rate)
        step = sampling_step(source_fps, fps)
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        for index, frame in enumerate(container.decode(stream)):
            if index % step == 0 and frame.time is not None:
                times.append(float(frame.time))
                frames.append(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
    detections = detector.detect(frames)
    return SampledClip(path.name, width, height, source_fps, fps, step, times, detections)


def track(clip: SampledClip, **tracker_options: Any) -> TrackRun:
    """Run the production tracker over the clip, as ``CameraAnalytics.on_detections`` does."""
    tracker = ObjectTracker(fps=clip.fps, **tracker_options)
    tracked = [
        tracker.update(d.select(np.isin(d.class_id, _DOMAIN_CLASS_IDS)), t)
        for t, d in zip(clip.times, clip.detections, strict=True)
    ]
    return TrackRun.from_tracked(clip, tracked)


def _velocity(points: Sequence[Observation]) -> tuple[float, float]:
    """Mean velocity in px/s between the first and last of ``points`` (zero for one point)."""
    a, b = points[0], points[-1]
    dt = b.t - a.t
    return ((b.cx - a.cx) / dt, (b.cy - a.cy) / dt) if dt > 0 else (0.0, 0.0)


def _opposite(a: Trajectory, b: Trajectory) -> bool:
    """A's exit and B's entry both move, in opposite directions: two objects, not one."""
    va = _velocity(a.points[-JUMP_VELOCITY_STEPS:])
    vb = _velocity(b.points[:JUMP_VELOCITY_STEPS])
    moving = MOVING_SIZES_PER_S * a.points[-1].size
    if math.hypot(*va) < moving or math.hypot(*vb) < moving:
        return False
    return va[0] * vb[0] + va[1] * vb[1] < 0


def fragments(trajectories: Sequence[Trajectory]) -> list[tuple[int, int]]:
    """(ended id, new id) pairs that are likely the same object re-identified; see module doc."""
    candidates: list[tuple[float, int, int]] = []
    for a in trajectories:
        last = a.points[-1]
        for b in trajectories:
            first = b.points[0]
            gap = b.start - a.end
            if b.label != a.label or not 0 < gap <= FRAGMENT_GAP_S:
                continue
            dist = math.hypot(first.cx - last.cx, first.cy - last.cy)
            if dist <= FRAGMENT_DIST_SIZES * last.size and not _opposite(a, b):
                candidates.append((dist, a.track_id, b.track_id))
    ended: set[int] = set()
    started: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, a_id, b_id in sorted(candidates):
        if a_id not in ended and b_id not in started:
            ended.add(a_id)
            started.add(b_id)
            pairs.append((a_id, b_id))
    return pairs


def jumps(trajectory: Trajectory) -> list[float]:
    """Times at which the track's box is far from where its recent motion predicted."""
    found: list[float] = []
    pts = trajectory.points
    for k in range(2, len(pts)):
        recent = pts[max(0, k - 1 - JUMP_VELOCITY_STEPS) : k]
        steps = [_velocity(pair) for pair in itertools.pairwise(recent)]
        median_v = (statistics.median(v[0] for v in steps), statistics.median(v[1] for v in steps))
        prev, cur = pts[k - 1], pts[k]
        dt = cur.t - prev.t
        miss = min(
            math.hypot(cur.cx - prev.cx - vx * dt, cur.cy - prev.cy - vy * dt)
            for vx, vy in (steps[-1], median_v)
        )
        if miss > JUMP_SIZES * max(prev.size, cur.size):
            found.append(cur.t)
    return found


def car_detection_shares(run: TrackRun) -> tuple[float, float]:
    """Of the car detections the tracker was given: the share with a confirmed id, and
    the share with the id of a track lasting ≥ ``LONG_TRACK_S``."""
    long_ids = [i for i, tr in run.trajectories.items() if tr.duration_s >= LONG_TRACK_S]
    total = tracked = in_long = 0
    for out in run.tracked:
        ids = out.tracker_id[out.class_id == _CAR]
        total += len(ids)
        tracked += int((ids >= 0).sum())
        in_long += int(np.isin(ids, long_ids).sum())
    return (tracked / total, in_long / total) if total else (0.0, 0.0)


def summarize(run: TrackRun) -> dict[str, Any]:
    trajs = list(run.trajectories.values())
    lengths = [t.duration_s for t in trajs] or [0.0]
    frags = fragments(trajs)
    jumps_at = [(t.track_id, round(at, 2)) for t in trajs for at in jumps(t)]
    tracked, in_long = car_detection_shares(run)
    return {
        "clip": run.clip.name,
        "fps": run.clip.fps,
        "frames": len(run.clip.times),
        "tracks": len(trajs),
        "tracks_by_label": dict(Counter(t.label for t in trajs).most_common()),
        "track_length_s": {
            "mean": round(statistics.fmean(lengths), 2),
            "median": round(statistics.median(lengths), 2),
        },
        "fragments": len(frags),
        "fragments_per_track": round(len(frags) / max(1, len(trajs)), 3),
        "fragment_pairs": frags,
        "jumps": len(jumps_at),
        "jumps_at": jumps_at,  # (track id, time s)
        "car_detections_tracked": round(tracked, 3),
        "car_detections_in_tracks_ge_2s": round(in_long, 3),
        "crossing_car_tracks": sum(1 for t in trajs if t.label == "car" and run.crosses(t)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--fps", type=float, nargs="+", default=[5.0, 10.0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS))
    args = parser.parse_args(argv)

    assets = assets_dir()
    detector = make_detector(assets / "models" / MODEL_DIR)
    top = max(args.fps)
    for name in args.clips:
        sampled = detect_clip(assets / "videos" / name, detector, top)
        for fps in sorted(args.fps):
            clip = sampled.at(fps) or detect_clip(assets / "videos" / name, detector, fps)
            print(json.dumps(summarize(track(clip))), flush=True)


if __name__ == "__main__":
    main()

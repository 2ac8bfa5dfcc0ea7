"""Clips cut from real recorder output, checked with real ffprobe/ffmpeg."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import Segment, SegmentIndex
from streams.clips import FootageMissing, cut_clip, to_mpegts
from tests.conftest import VideoFinder
from tests.recording_helpers import (
    decode_errors,
    ffprobe,
    record_clip,
    source_frames_s,
    source_keyframes_s,
)

T0 = 1_700_000_000.0
GAP_S = 20.0
EPS_S = 2e-3


@dataclass(frozen=True)
class Recorded:
    camera_id: str
    clip: Path
    keyframes_ts: list[float]  # wall-clock times of the source's key frames
    frames_ts: list[float]
    frame_s: float

    @property
    def gop_s(self) -> float:
        """The longest stretch between two key frames."""
        return max(b - a for a, b in pairwise(self.keyframes_ts))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def index(engine: Engine) -> SegmentIndex:
    return SegmentIndex(engine)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


def _recorded(clip: Path, camera_id: str, t0: float) -> Recorded:
    frames = [t0 + s for s in source_frames_s(clip)]
    frame_s = (frames[-1] - frames[0]) / (len(frames) - 1)
    return Recorded(camera_id, clip, [t0 + s for s in source_keyframes_s(clip)], frames, frame_s)


@pytest.fixture(scope="module")
def street(video: VideoFinder, root: Path, index: SegmentIndex) -> Recorded:
    """75 s, ~10 fps, no B-frames, a key frame every ~2 s."""
    clip = video("street_parking_ipcam_day.mp4")
    record_clip(clip, root, "street", T0, index=index)
    return _recorded(clip, "street", T0)


@pytest.fixture(scope="module")
def motorbikes(video: VideoFinder, root: Path, index: SegmentIndex) -> Recorded:
    """30 s, 30 fps, B-frames, key frames 1-5 s apart."""
    clip = video("motorbikes_etle_cctv.mp4")
    record_clip(clip, root, "motorbikes", T0, index=index)
    return _recorded(clip, "motorbikes", T0)


@pytest.fixture(params=["street", "motorbikes"])
def recorded(request: pytest.FixtureRequest) -> Recorded:
    result: Recorded = request.getfixturevalue(request.param)
    return result


def _duration_s(path: Path) -> float:
    return float(ffprobe(path, "-show_entries", "format=duration")["format"]["duration"])


def _packets(path: Path) -> int:
    info = ffprobe(path, "-count_packets", "-show_entries", "stream=nb_read_packets")
    return int(info["streams"][0]["nb_read_packets"])


def _first_frame(path: Path) -> dict[str, object]:
    info = ffprobe(
        path,
        "-show_frames",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "frame=key_frame,pict_type",
    )
    frame: dict[str, object] = info["frames"][0]
    return frame


def _check_clip(path: Path, rec: Recorded, start_ts: float, end_ts: float) -> None:
    """The clip plays, starts on a key frame and holds every source frame in between."""
    assert path.is_file()
    assert decode_errors(path) == ""
    assert _first_frame(path) == {"key_frame": 1, "pict_type": "I"}
    # Its length is what ClipInfo says, within a frame (ffprobe adds the B-frame delay).
    assert _duration_s(path) == pytest.approx(end_ts - start_ts, abs=1.5 * rec.frame_s)
    # No frame lost or doubled at segment joints.
    lo = bisect.bisect_left(rec.frames_ts, start_ts - EPS_S)
    hi = bisect.bisect_left(rec.frames_ts, end_ts - EPS_S)
    assert _packets(path) == hi - lo


def _expected_start(rec: Recorded, since_ts: float) -> float:
    return max(k for k in rec.keyframes_ts if k <= since_ts + EPS_S)


def test_clip_across_segment_boundaries_plays(
    recorded: Recorded, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    since_ts, until_ts = T0 + 9.5, T0 + 24.5
    segments = index.overlapping(recorded.camera_id, since_ts, until_ts)
    assert len(segments) >= 3  # the window crosses at least two joints
    info = cut_clip(root, segments, since_ts, until_ts, tmp_path / "clip.mp4")

    assert info.segment_ids == tuple(s.id for s in segments)
    # It starts on the last key frame at or before since_ts: at most one GOP early.
    assert info.start_ts == pytest.approx(_expected_start(recorded, since_ts), abs=EPS_S)
    assert since_ts - recorded.gop_s <= info.start_ts <= since_ts
    # It ends with the frames just before until_ts (B-frames may leave out a few).
    assert until_ts - 4 * recorded.frame_s <= info.end_ts <= until_ts + recorded.frame_s
    assert info.duration_s == pytest.approx(info.end_ts - info.start_ts)
    assert info.bytes == info.path.stat().st_size
    _check_clip(info.path, recorded, info.start_ts, info.end_ts)
    assert not list(tmp_path.glob(".*.part"))  # written under a temp name, renamed


@pytest.mark.parametrize(("event_s", "pre_s", "post_s"), [((12.0, 18.0), 5.0, 5.0)])
def test_incident_clip_is_pre_roll_event_post_roll(
    recorded: Recorded,
    index: SegmentIndex,
    root: Path,
    tmp_path: Path,
    event_s: tuple[float, float],
    pre_s: float,
    post_s: float,
) -> None:
    since_ts, until_ts = T0 + event_s[0] - pre_s, T0 + event_s[1] + post_s
    segments = index.overlapping(recorded.camera_id, since_ts, until_ts)
    info = cut_clip(root, segments, since_ts, until_ts, tmp_path / "incident.mp4")

    expected_s = pre_s + (event_s[1] - event_s[0]) + post_s
    assert expected_s - 4 * recorded.frame_s <= info.duration_s <= expected_s + recorded.gop_s
    assert info.start_ts == pytest.approx(_expected_start(recorded, since_ts), abs=EPS_S)
    _check_clip(info.path, recorded, info.start_ts, info.end_ts)


def test_no_footage_raises_footage_missing(
    street: Recorded, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    before = index.overlapping("street", T0 - 100, T0 - 50)
    assert before == []
    with pytest.raises(FootageMissing, match="no footage"):
        cut_clip(root, before, T0 - 100, T0 - 50, tmp_path / "none.mp4")
    # Segments given but none in the window: the same.
    everything = index.overlapping("street", T0, T0 + 100)
    with pytest.raises(FootageMissing):
        cut_clip(root, everything, T0 + 200, T0 + 300, tmp_path / "none.mp4")
    # Indexed, but the file is gone (deleted behind the index's back).
    ghost = Segment(999_999, "street", "street/gone.mp4", T0 + 10, T0 + 14, 1000)
    with pytest.raises(FootageMissing, match="no readable footage"):
        cut_clip(root, [ghost], T0 + 10, T0 + 14, tmp_path / "none.mp4")
    # A path that leads out of the recordings directory is never opened, even to a
    # perfectly good video.
    escape = os.path.relpath(street.clip, root)
    assert escape.startswith("..")
    outside = Segment(999_998, "street", escape, T0 + 10, T0 + 14, 10)
    with pytest.raises(FootageMissing, match="no readable footage"):
        cut_clip(root, [outside], T0 + 10, T0 + 14, tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()
    assert not list(tmp_path.glob(".*.part"))  # the temp file is cleaned up


def test_gap_between_recordings_stays_a_gap(
    video: VideoFinder, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    clip = video("street_parking_ipcam_day.mp4")
    first = record_clip(clip, root, "gappy", T0, index=index)
    second_t0 = first[-1].end_ts + GAP_S
    second = record_clip(clip, root, "gappy", second_t0, index=index)
    gap_s = second[0].start_ts - first[-1].end_ts  # the first key frame comes late
    since_ts, until_ts = first[-1].end_ts - 6, second[0].start_ts + 6

    segments = index.overlapping("gappy", since_ts, until_ts)
    info = cut_clip(root, segments, since_ts, until_ts, tmp_path / "gap.mp4")

    assert decode_errors(info.path) == ""
    assert _first_frame(info.path)["key_frame"] == 1
    # Clip time is wall time: the gap is kept, not squeezed out.
    assert _duration_s(info.path) == pytest.approx(info.end_ts - info.start_ts, abs=0.15)
    assert info.end_ts - info.start_ts > gap_s + 10
    packets = ffprobe(info.path, "-show_entries", "packet=pts_time")["packets"]
    times = sorted(float(p["pts_time"]) for p in packets)
    steps = [b - a for a, b in pairwise(times)]
    jump = steps.index(max(steps))
    # The longest step between frames is the gap: from the first run's last frame...
    last_ts = T0 + source_frames_s(clip)[-1]
    assert times[jump] == pytest.approx(last_ts - info.start_ts, abs=EPS_S)
    assert times[jump + 1] - times[jump] > gap_s
    # ...to the second's first, whose clip time is its wall time minus the clip start.
    assert times[jump + 1] == pytest.approx(second[0].start_ts - info.start_ts, abs=EPS_S)


def test_a_damaged_segment_is_skipped_as_a_gap(
    video: VideoFinder, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    closed = record_clip(video("street_parking_ipcam_day.mp4"), root, "damaged", T0, index=index)
    broken = closed[2]
    with open(root / broken.path, "r+b") as fh:
        fh.truncate(1000)  # its index (moov) is gone: it no longer opens
    since_ts, until_ts = closed[1].start_ts, closed[3].end_ts
    segments = index.overlapping("damaged", since_ts, until_ts)
    info = cut_clip(root, segments, since_ts, until_ts, tmp_path / "damaged.mp4")

    assert broken.path in {s.path for s in segments}
    # since_ts is a segment's first key frame: the clip starts right there, not on the
    # previous segment's last GOP (which may overlap it by a frame's length).
    assert info.start_ts == pytest.approx(since_ts, abs=EPS_S)
    assert info.segment_ids == tuple(
        s.id for s in segments if s.start_ts >= since_ts - EPS_S and s.path != broken.path
    )
    assert decode_errors(info.path) == ""
    # The missing seconds stay in the timeline, like any gap.
    assert _duration_s(info.path) == pytest.approx(until_ts - since_ts, abs=0.15)


def test_a_codec_change_ends_the_clip(
    video: VideoFinder, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    """Two cameras' worth of codec settings cannot share one MP4 track."""
    street_run = record_clip(video("street_parking_ipcam_day.mp4"), root, "mixed", T0, index=index)
    record_clip(video("motorbikes_etle_cctv.mp4"), root, "mixed", T0 + 76, index=index)
    segments = index.overlapping("mixed", T0 + 60, T0 + 90)
    info = cut_clip(root, segments, T0 + 60, T0 + 90, tmp_path / "mixed.mp4")

    assert info.end_ts == pytest.approx(street_run[-1].end_ts, abs=0.15)
    street_ids = {s.id for s in segments if s.start_ts < street_run[-1].end_ts}
    assert set(info.segment_ids) == street_ids
    assert decode_errors(info.path) == ""


def test_to_mpegts_is_a_playable_ts_on_the_wall_clock(
    recorded: Recorded, index: SegmentIndex, root: Path, tmp_path: Path
) -> None:
    first, second = index.overlapping(recorded.camera_id, T0 + 8, T0 + 20)[:2]
    plain = tmp_path / "plain.ts"
    plain.write_bytes(to_mpegts(root / first.path))
    fmt = ffprobe(plain, "-show_entries", "format=format_name,duration,start_time")["format"]
    assert fmt["format_name"] == "mpegts"
    assert float(fmt["duration"]) == pytest.approx(first.duration_s, abs=1.5 * recorded.frame_s)
    assert float(fmt["start_time"]) < 0.1
    assert decode_errors(plain) == ""

    # On the wall clock, the next segment's TS starts where this one ends.
    starts = []
    for n, seg in enumerate((first, second)):
        path = tmp_path / f"wall{n}.ts"
        path.write_bytes(to_mpegts(root / seg.path, seg.start_ts))
        assert decode_errors(path) == ""
        starts.append(
            float(ffprobe(path, "-show_entries", "format=start_time")["format"]["start_time"])
        )
    wrap_s = 2**33 / 90_000
    assert starts[0] == pytest.approx(first.start_ts % wrap_s, abs=0.05)
    assert starts[1] - starts[0] == pytest.approx(second.start_ts - first.start_ts, abs=EPS_S)

    with pytest.raises(FootageMissing):
        to_mpegts(root / "street" / "gone.mp4")

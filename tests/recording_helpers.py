"""Real recordings for tests: a clip remuxed into segments by the real recorder."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from core.storage.segments import SegmentIndex
from core.types import SegmentClosed
from streams.recorder import SegmentRecorder


def record_clip(
    clip: Path,
    root: Path,
    camera_id: str,
    t0_ts: float,
    segment_s: float = 4.0,
    index: SegmentIndex | None = None,
) -> list[SegmentClosed]:
    """Record ``clip`` as if a camera had streamed it live from wall time ``t0_ts``.

    Packets go to :class:`SegmentRecorder` as fast as they demux, each with capture
    time ``t0_ts + pts_seconds``. Each packet is decoded first, as the reader does:
    the recorder rewrites a packet's timestamps and stream, so the decoder must
    have seen it before. Segments are added to ``index`` when one is given.
    """
    closed: list[SegmentClosed] = []
    recorder = SegmentRecorder(camera_id, root, segment_s, closed.append)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        # pts 0 of the stream is wall time t0 (B-frames make the first packet's pts
        # larger than the next ones', so the first packet is no reference).
        start_pts = stream.start_time or 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue  # the flush packet at the end
            pts_s = float((packet.pts - start_pts) * time_base)
            packet.decode()
            recorder.on_packet(camera_id, packet, t0_ts + pts_s)
        recorder.end_session(camera_id)
    if recorder.health.record_error is not None:
        raise AssertionError(f"recording {clip.name} failed: {recorder.health.record_error}")
    if index is not None:
        for event in closed:
            index.add(event)
    return closed


def source_keyframes_s(clip: Path) -> list[float]:
    """Show times of the clip's key frames, seconds from its pts 0 (as record_clip maps)."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        start_pts = stream.start_time or 0
        return sorted(
            float((p.pts - start_pts) * time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.is_keyframe
        )


def source_frames_s(clip: Path) -> list[float]:
    """Show times of all the clip's frames, seconds from its pts 0."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        start_pts = stream.start_time or 0
        return sorted(
            float((p.pts - start_pts) * time_base)
            for p in container.demux(stream)
            if p.pts is not None
        )


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    """ffprobe's JSON for ``path``; fails the test on any ffprobe error output."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, f"ffprobe {path.name}: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def decode_errors(path: Path) -> str:
    """Everything ffmpeg complains about while decoding every frame ("" when clean)."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stderr if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"

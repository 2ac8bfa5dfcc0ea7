"""Continuous recording by packet remux: short MP4 segments, never decoded or re-encoded.

A segment starts on a key frame (so it plays on its own) and ends at the first key
frame after ``segment_s``. It is written under a hidden ``.part`` name and renamed
when complete, so the index only ever names whole files: a crash mid-segment leaves
a ``.part`` file that the next start deletes.

Layout: ``<root>/<camera>/<YYYY-MM-DD>/<HH>/<HH-MM-SS.mmm>.mp4`` in UTC, which
also lets a scan recover a segment's start time from its name.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from core.types import CameraHealth, SegmentClosed

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
RETRY_AFTER_ERROR_S = 10.0
_NAME_FORMAT = "%Y-%m-%d/%H/%H-%M-%S"


def segment_relpath(camera_id: str, start_ts: float) -> str:
    """The path of a segment under the recordings root, from its start time."""
    whole = int(start_ts)
    millis = min(999, round((start_ts - whole) * 1000))
    return f"{camera_id}/{time.strftime(_NAME_FORMAT, time.gmtime(whole))}.{millis:03d}.mp4"


def start_ts_from_name(relpath: str) -> float | None:
    """Inverse of :func:`segment_relpath` (None for a name it did not make)."""
    parts = relpath.split("/")
    if len(parts) < 4 or not parts[-1].endswith(".mp4"):
        return None
    stem = parts[-1].removesuffix(".mp4")
    clock, _, millis = stem.partition(".")
    try:
        parsed = time.strptime(f"{parts[-3]} {clock}", "%Y-%m-%d %H-%M-%S")
        return calendar.timegm(parsed) + int(millis or 0) / 1000
    except ValueError:
        return None


def probe_duration_s(path: Path) -> float:
    """Duration of a finished segment from its first to just after its last frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        first: float | None = None
        last = 0.0
        frame_s = float(1 / stream.average_rate) if stream.average_rate else 0.04
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * tb)
            first = t if first is None else min(first, t)
            last = max(last, t)
        return 0.0 if first is None else last - first + frame_s


class SegmentRecorder:
    """A :class:`streams.reader.PacketSink` that writes one camera's segments.

    Everything it does runs on the camera's reader thread; every failure (a full
    disk, an odd packet) is caught, counted in the camera's health and retried
    later, so recording trouble never stops detection.
    """

    def __init__(
        self,
        camera_id: str,
        root: Path,
        segment_s: float,
        on_segment: Callable[[SegmentClosed], None],
        health: CameraHealth | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_recovered: Callable[[str], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.root = root
        self.segment_s = segment_s
        self._on_segment = on_segment
        self._on_error = on_error
        self._on_recovered = on_recovered
        self.health = health or CameraHealth(camera_id=camera_id)
        self._out: Any = None
        self._out_stream: Any = None
        self._in_stream: Any = None
        self._part: Path | None = None
        self._relpath = ""
        self._start_ts = 0.0
        self._last_ts = 0.0
        self._frame_s = 0.04
        self._offset = 0
        self._time_base = Fraction(1, 90000)
        self._pts_min = 0
        self._pts_max = 0
        self._last_dts: int | None = None
        self._retry_at = 0.0
        self.health.recording = "waiting_keyframe"

    # -- PacketSink ----------------------------------------------------------------
    def on_packet(self, camera_id: str, packet: Any, capture_ts: float) -> None:
        try:
            self._on_packet(packet, capture_ts)
        except Exception as exc:  # a full disk must not take detection down with it
            self._fail(exc)

    def end_session(self, camera_id: str) -> None:
        try:
            self._finish()
        except Exception as exc:
            self._fail(exc)
        self._in_stream = None

    def close(self) -> None:
        self.end_session(self.camera_id)

    # -- segments ------------------------------------------------------------------
    def _on_packet(self, packet: Any, capture_ts: float) -> None:
        if self._retry_at and time.monotonic() < self._retry_at:
            return
        stream = packet.stream
        if self._out is not None and stream is not self._in_stream:
            # A new connection or codec context: its packets do not continue this file.
            self._finish()
        if packet.is_keyframe and (self._out is None or self._length_s(packet) >= self.segment_s):
            self._finish()
            self._open(stream, capture_ts, packet)
        if self._out is None:
            return  # waiting for a key frame: a segment must decode on its own
        self._write(packet, capture_ts)

    def _length_s(self, packet: Any) -> float:
        # Stream time, not wall time: a burst of packets at connect has little wall
        # time between them but a full GOP of video.
        return float((packet.pts - self._offset - self._pts_min) * self._time_base)

    def _open(self, stream: Any, capture_ts: float, packet: Any) -> None:
        self._relpath = segment_relpath(self.camera_id, capture_ts)
        final = self.root / self._relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        self._part = final.with_name(f".{final.name}{PART_SUFFIX}")
        self._out = av.open(str(self._part), "w", format="mp4")
        self._out_stream = self._out.add_stream_from_template(stream)
        self._in_stream = stream
        self._start_ts = self._last_ts = capture_ts
        self._frame_s = float(1 / stream.average_rate) if stream.average_rate else 0.04
        # Rebase so the file starts at zero; dts (decode order) leads pts.
        self._offset = packet.dts if packet.dts is not None else packet.pts
        self._time_base = packet.time_base or stream.time_base or Fraction(1, 90000)
        self._pts_min = self._pts_max = packet.pts - self._offset
        self._last_dts = None
        self._retry_at = 0.0
        self.health.recording = "recording"

    def _write(self, packet: Any, capture_ts: float) -> None:
        pts = packet.pts - self._offset
        dts = (packet.dts if packet.dts is not None else packet.pts) - self._offset
        if self._last_dts is not None and dts <= self._last_dts:
            # MP4 needs strictly increasing decode times; a camera that repeats one
            # is nudged by one tick, and a packet that goes back is dropped.
            dts = self._last_dts + 1
            if pts < dts:
                return
        packet.pts, packet.dts = pts, dts
        packet.stream = self._out_stream
        self._out.mux(packet)
        self._last_dts = dts
        self._last_ts = max(self._last_ts, capture_ts)
        self._pts_min = min(self._pts_min, pts)
        self._pts_max = max(self._pts_max, pts)

    def _finish(self) -> None:
        out, part = self._out, self._part
        if out is None or part is None:
            return
        self._out = self._part = None
        # Times are anchored on the segment's end: the wall-clock mapping is best
        # there (a burst at connect stamps the first packets late), and the length
        # is the file's own, so the index and the file agree.
        duration_s = float((self._pts_max - self._pts_min) * self._time_base) + self._frame_s
        end_ts = self._last_ts + self._frame_s
        start_ts = end_ts - duration_s
        final = part.with_name(part.name[1:].removesuffix(PART_SUFFIX))
        try:
            out.close()  # writes the index (moov): a full disk fails here
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())  # the data is on disk before the name says complete
            part.replace(final)
        except BaseException:
            # The state no longer names the file, so _fail cannot: a broken segment
            # must not stay behind, holding the space a full disk needs back.
            part.unlink(missing_ok=True)
            raise
        size = final.stat().st_size
        self.health.segments_recorded += 1
        recovered = self.health.record_error is not None
        self.health.record_error = None
        self._on_segment(SegmentClosed(self.camera_id, self._relpath, start_ts, end_ts, size))
        if recovered:
            log.info("camera %s: recording works again", self.camera_id)
            if self._on_recovered is not None:
                self._on_recovered(self.camera_id)

    def _fail(self, exc: BaseException) -> None:
        message = f"recording failed: {exc}"
        first = self.health.recording != "error"
        self.health.recording = "error"
        self.health.record_error = message
        out, part = self._out, self._part
        self._out = self._part = None
        if out is not None:
            with contextlib.suppress(Exception):  # the file is being thrown away
                out.close()
        if part is not None:
            part.unlink(missing_ok=True)
        # Wait for the next key frame after a pause, rather than retrying every packet.
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR_S
        if first:
            log.error("camera %s: %s", self.camera_id, message)
            if self._on_error is not None:
                self._on_error(self.camera_id, message)


def recover(
    root: Path, camera_id: str, announce: Callable[[SegmentClosed], None], newest: int = 3
) -> int:
    """After a crash: delete unfinished ``.part`` files and re-announce the newest
    finished segments, whose index entry may have been lost with the process.

    Returns how many ``.part`` files were removed. Only the newest day and hour
    folders are looked at: that is where a crash can have left anything.
    """
    camera_dir = root / camera_id
    if not camera_dir.is_dir():
        return 0
    removed = 0
    finished: list[Path] = []
    for day in sorted(p for p in camera_dir.iterdir() if p.is_dir())[-2:]:
        for hour in sorted(p for p in day.iterdir() if p.is_dir())[-2:]:
            for path in hour.iterdir():
                if path.name.endswith(PART_SUFFIX):
                    path.unlink(missing_ok=True)
                    removed += 1
                elif path.suffix == ".mp4" and not path.name.startswith("."):
                    finished.append(path)
    for path in sorted(finished)[-newest:]:
        rel = path.relative_to(root).as_posix()
        start_ts = start_ts_from_name(rel)
        if start_ts is None:
            continue
        try:
            duration_s = probe_duration_s(path)
        except (av.error.FFmpegError, IndexError) as exc:
            log.warning("segment %s does not open (%s); left out of the index", rel, exc)
            continue
        announce(
            SegmentClosed(camera_id, rel, start_ts, start_ts + duration_s, path.stat().st_size)
        )
    if removed:
        log.warning("camera %s: removed %d unfinished segment(s)", camera_id, removed)
    return removed

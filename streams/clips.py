"""Clips and HLS pieces cut from recorded segments by packet remux (never decoded).

Every packet's wall-clock time comes from its segment: a segment starts on a key
frame whose capture time is ``Segment.start_ts``, so a packet's time is
``start_ts + (pts - pts_of_the_file's_first_packet) * time_base``.

Choices a caller should know:

* A clip starts on the last key frame at or before ``since_ts`` (it must decode
  from its first frame), so it may begin up to one GOP early; it ends with the last
  packet, in decode order, before the first one shown at or after ``until_ts``.
  Cutting in decode order keeps every kept frame decodable; with B-frames the few
  frames shown just before ``until_ts`` that decode after that point are left out.
* A gap between segments (camera offline) stays a gap in the clip's timeline: the
  last frame before it is shown for the gap's length, so clip time minus clip start
  is always wall time minus :attr:`ClipInfo.start_ts`.
* A segment whose codec parameters differ from the clip's first (the camera was
  reconfigured) cannot share its MP4 track: the clip ends before it, and
  :attr:`ClipInfo.end_ts` says where it really ends.
* A segment whose file is missing or unreadable, or whose path leads outside
  ``root``, is skipped like a gap.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from core.storage.segments import Segment

log = logging.getLogger(__name__)

MPEGTS_CLOCK_HZ = 90_000
# MPEG-TS timestamps are 33 bits of the 90 kHz clock: they wrap every ~26.5 h.
_MPEGTS_WRAP_TICKS = 1 << 33
_DEFAULT_FRAME_S = 0.04
# Float wall times of a packet and of a boundary can differ by rounding only.
_EPSILON_S = 1e-4


class FootageMissing(LookupError):  # noqa: N818 (an expected outcome, not a fault)
    """Nothing was recorded (or nothing is left on disk) in the requested window."""


@dataclass(frozen=True, slots=True)
class ClipInfo:
    path: Path
    start_ts: float  # wall-clock time of the clip's first (key) frame
    end_ts: float  # wall-clock time just after its last frame
    bytes: int
    segment_ids: tuple[int, ...]

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts


@dataclass(frozen=True, slots=True)
class _TimedPacket:
    packet: Any
    pts_ts: float  # wall-clock time the frame is shown
    dts_ts: float  # wall-clock time it is decoded
    duration_s: float


class _SegmentReader:
    """One segment file opened for demuxing, packets mapped to wall-clock time."""

    def __init__(self, root: Path, segment: Segment) -> None:
        self.segment = segment
        path = (root / segment.path).resolve()
        if not path.is_relative_to(root.resolve()):
            # Paths come from the index; still, nothing outside the recordings is read.
            raise PermissionError(f"{segment.path!r} is outside the recordings directory")
        self.container: Any = av.open(str(path))
        self.stream: Any = self.container.streams.video[0]
        self.time_base = self.stream.time_base or Fraction(1, MPEGTS_CLOCK_HZ)
        rate = self.stream.average_rate
        self.frame_s = float(1 / rate) if rate else _DEFAULT_FRAME_S

    def packets(self) -> Iterator[_TimedPacket]:
        first_pts: int | None = None
        demuxed = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demuxed)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                # A damaged file: what came before is good, the rest is a gap.
                log.warning("segment %s breaks off (%s)", self.segment.path, exc)
                return
            if packet.pts is None:
                continue  # the demuxer's flush packet
            if first_pts is None:
                first_pts = packet.pts  # the key frame the segment starts on
            dts = packet.dts if packet.dts is not None else packet.pts
            duration_s = float(packet.duration * self.time_base) if packet.duration else 0.0
            yield _TimedPacket(
                packet,
                self.segment.start_ts + float((packet.pts - first_pts) * self.time_base),
                self.segment.start_ts + float((dts - first_pts) * self.time_base),
                duration_s or self.frame_s,
            )

    def same_codec(self, other: Any) -> bool:
        mine, theirs = self.stream.codec_context, other.codec_context
        return bool(
            mine.name == theirs.name
            and mine.width == theirs.width
            and mine.height == theirs.height
            and bytes(mine.extradata or b"") == bytes(theirs.extradata or b"")
        )

    def close(self) -> None:
        self.container.close()


def _open(root: Path, segment: Segment) -> _SegmentReader | None:
    try:
        return _SegmentReader(root, segment)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        log.warning("segment %s is unreadable (%s): skipped as a gap", segment.path, exc)
        return None


def _start_key_ts(root: Path, segment: Segment, since_ts: float) -> float:
    """Wall time of the last key frame at or before ``since_ts`` (the first if none)."""
    reader = _SegmentReader(root, segment)  # a pass of its own: demuxers rewind poorly
    start: float | None = None
    try:
        for timed in reader.packets():
            if timed.pts_ts > since_ts + _EPSILON_S:
                if start is None and timed.packet.is_keyframe:
                    start = timed.pts_ts
                break
            if timed.packet.is_keyframe:
                start = timed.pts_ts
    finally:
        reader.close()
    if start is None:
        raise FootageMissing(f"segment {segment.path} has no key frame")
    return start


class _ClipWriter:
    """Muxes wall-clock-timed packets into one MP4 whose time starts at the first packet."""

    def __init__(self, path: Path, template: Any) -> None:
        self._out: Any = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self._stream: Any = self._out.add_stream_from_template(template)
        self._time_base: Fraction = template.time_base or Fraction(1, MPEGTS_CLOCK_HZ)
        self._origin_ts: float | None = None
        self._last_dts: int | None = None
        self.start_ts = 0.0
        self.end_ts = 0.0
        self.packets = 0

    def _ticks(self, ts: float) -> int:
        assert self._origin_ts is not None
        return round((ts - self._origin_ts) / self._time_base)

    def write(self, timed: _TimedPacket) -> None:
        if self._origin_ts is None:
            # Decode time leads show time with B-frames: the first packet decodes at 0.
            self._origin_ts = timed.dts_ts
            self.start_ts = self.end_ts = timed.pts_ts
        pts, dts = self._ticks(timed.pts_ts), self._ticks(timed.dts_ts)
        if self._last_dts is not None and dts <= self._last_dts:
            # MP4 needs strictly increasing decode times (rounding at a segment joint).
            dts = self._last_dts + 1
            if pts < dts:
                return
        packet = timed.packet
        packet.pts, packet.dts = pts, dts
        packet.time_base = self._time_base
        packet.stream = self._stream
        self._out.mux(packet)
        self._last_dts = dts
        self.end_ts = max(self.end_ts, timed.pts_ts + timed.duration_s)
        self.packets += 1

    def close(self) -> None:
        self._out.close()


def cut_clip(
    root: Path,
    segments: Sequence[Segment],
    since_ts: float,
    until_ts: float,
    out_path: Path,
) -> ClipInfo:
    """Concatenate the footage of ``[since_ts, until_ts)`` into one MP4 at ``out_path``.

    ``segments`` are one camera's, oldest first (as :meth:`SegmentIndex.overlapping`
    returns them); those outside the window are ignored. The file is written under
    a temporary name and renamed, so ``out_path`` is always a whole clip, with its
    index at the front (``+faststart``) so a browser can play it while it downloads.
    Raises :class:`FootageMissing` when nothing in the window can be read.
    """
    if until_ts <= since_ts:
        raise ValueError("until_ts must be later than since_ts")
    wanted = [s for s in segments if s.start_ts < until_ts and s.end_ts > since_ts]
    if not wanted:
        raise FootageMissing(f"no footage recorded between {since_ts:.3f} and {until_ts:.3f}")
    # Segments start on key frames, so the last key frame at or before since_ts is in
    # the newest segment that starts by then; an older one may still overlap the
    # window by its last frame's length, but starting there would begin a GOP early.
    while len(wanted) > 1 and wanted[1].start_ts <= since_ts + _EPSILON_S:
        wanted.pop(0)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent
    )
    os.close(fd)
    temp = Path(temp_name)
    try:
        writer, used = _write_clip(root, wanted, since_ts, until_ts, temp)
        temp.replace(out_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return ClipInfo(out_path, writer.start_ts, writer.end_ts, out_path.stat().st_size, used)


def _write_clip(
    root: Path, segments: Sequence[Segment], since_ts: float, until_ts: float, temp: Path
) -> tuple[_ClipWriter, tuple[int, ...]]:
    writer: _ClipWriter | None = None
    first: _SegmentReader | None = None
    used: list[int] = []
    try:
        for segment in segments:
            reader = _open(root, segment)
            if reader is None:
                continue
            try:
                if first is None:
                    start_ts = _start_key_ts(root, segment, since_ts)
                    first = reader
                    writer = _ClipWriter(temp, reader.stream)
                elif not first.same_codec(reader.stream):
                    log.warning(
                        "segment %s changes codec parameters: the clip ends before it",
                        segment.path,
                    )
                    break
                else:
                    start_ts = segment.start_ts
                assert writer is not None
                done, wrote = _copy(reader, writer, start_ts, until_ts)
                if wrote:
                    used.append(segment.id)
                if done:
                    break
            finally:
                if reader is not first:
                    reader.close()
        if writer is None or writer.packets == 0:
            raise FootageMissing(f"no readable footage between {since_ts:.3f} and {until_ts:.3f}")
        return writer, tuple(used)
    finally:
        if writer is not None:
            writer.close()
        if first is not None:
            first.close()


def _copy(
    reader: _SegmentReader, writer: _ClipWriter, start_ts: float, until_ts: float
) -> tuple[bool, bool]:
    """Copy one segment's packets from its key frame at ``start_ts`` on.

    Returns (reached until_ts, wrote anything).
    """
    started = False
    wrote = False
    for timed in reader.packets():
        if not started:
            # Skip, in decode order, everything before the chosen key frame.
            if not (timed.packet.is_keyframe and abs(timed.pts_ts - start_ts) <= _EPSILON_S):
                continue
            started = True
        if timed.pts_ts >= until_ts:
            return True, wrote
        writer.write(timed)
        wrote = True
    return False, wrote


def to_mpegts(path: Path, start_ts: float | None = None) -> bytes:
    """One segment remuxed to MPEG-TS, for HLS.

    With ``start_ts`` (the segment's wall-clock start) its timestamps are the wall
    clock on the 90 kHz MPEG-TS clock (33 bits, so they wrap every ~26.5 h like any
    TS stream's): consecutive segments then continue each other without a
    discontinuity, as HLS players expect. Without it the segment starts near 0.
    The muxer converts H.264 from MP4's length-prefixed form to Annex B itself
    (FFmpeg inserts ``h264_mp4toannexb`` automatically for MPEG-TS).
    Raises :class:`FootageMissing` when the file is gone or does not demux.
    """
    try:
        return _to_mpegts(path, start_ts)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise FootageMissing(f"segment {path.name} cannot be read: {exc}") from exc


def _to_mpegts(path: Path, start_ts: float | None) -> bytes:
    buffer = io.BytesIO()
    clock = Fraction(1, MPEGTS_CLOCK_HZ)
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        time_base = stream.time_base or clock
        with av.open(buffer, "w", format="mpegts") as out:
            out_stream = out.add_stream_from_template(stream)
            base: int | None = None  # output ticks of the first frame's show time
            first_pts = 0
            last_dts: int | None = None
            for packet in source.demux(stream):
                if packet.pts is None:
                    continue
                dts_in = packet.dts if packet.dts is not None else packet.pts
                if base is None:
                    first_pts = packet.pts
                    # With B-frames the first frame decodes before it is shown: keep
                    # its decode time at or above zero.
                    lead = max(0, round((packet.pts - dts_in) * time_base / clock))
                    base = lead
                    if start_ts is not None:
                        base = round(start_ts * MPEGTS_CLOCK_HZ) % _MPEGTS_WRAP_TICKS
                        if base < lead:
                            base += _MPEGTS_WRAP_TICKS  # the muxer keeps the low 33 bits
                pts = base + round((packet.pts - first_pts) * time_base / clock)
                dts = base + round((dts_in - first_pts) * time_base / clock)
                if last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1
                packet.pts, packet.dts = pts, dts
                packet.time_base = clock
                packet.stream = out_stream
                out.mux(packet)
                last_dts = dts
    return buffer.getvalue()

"""Recorded footage: timeline, footage export (MP4, HLS), incident clips.

Every route is a plain ``def``: cutting and remuxing is blocking file work, which
FastAPI runs in its thread pool. Every file served comes from the segment index
and is checked to lie inside the recordings directory first.

Cut MP4s are cached under ``<media_root>/exports/clips`` by a key made of the
window and the exact segments (ids and ends) that went in: a browser's many Range
requests for one video get the same file, and a clip is cut again by itself when
a new segment lands in its window or retention removes one. Files untouched for
an hour are pruned when the next clip is cut.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import FileResponse

from api.auth import EVERYONE, MEDIA, require
from api.deps import get_media_root, get_recordings_dir, get_repo, get_segments
from api.params import RowId, ts_query
from api.schemas import TimelineIncidentOut, TimelineOut, TimeRangeOut
from core.storage.repository import IncidentQuery, IncidentRepository
from core.storage.segments import CONTIGUOUS_S, Segment, SegmentIndex, gaps_between, merge_ranges
from streams.clips import FootageMissing, cut_clip, to_mpegts

log = logging.getLogger(__name__)

router = APIRouter(tags=["recordings"])

MAX_EXPORT_S = 24 * 3600.0
MAX_TIMELINE_S = 31 * 86400.0
TIMELINE_INCIDENTS = 500
EXPORT_KEEP_S = 3600.0
# A segment reaches the index once complete: at most its length (≤ 300 s) plus a GOP late.
SEGMENT_LATE_S = 600.0
HLS_MEDIA_TYPE = "application/vnd.apple.mpegurl"

Segments = Annotated[SegmentIndex, Depends(get_segments)]
RecordingsDir = Annotated[Path, Depends(get_recordings_dir)]
MediaRoot = Annotated[Path, Depends(get_media_root)]
Repo = Annotated[IncidentRepository, Depends(get_repo)]
SinceTs = Annotated[float, ts_query("window start, UTC epoch seconds")]
UntilTs = Annotated[float, ts_query("window end (excluded), UTC epoch s")]

_MP4_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "MP4; Range requests get 206"},
    206: {"content": {"video/mp4": {}}, "description": "the requested byte range"},
    404: {"description": "nothing recorded in the window, or the footage is gone"},
}


def _check_window(since_ts: float, until_ts: float, max_span_s: float) -> None:
    if until_ts <= since_ts:
        raise HTTPException(422, "until_ts must be later than since_ts")
    if until_ts - since_ts > max_span_s:
        raise HTTPException(
            422,
            f"until_ts - since_ts is {until_ts - since_ts:.0f} s; "
            f"at most {max_span_s:.0f} s ({max_span_s / 3600:g} h) per request",
        )


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _file_stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _inside(root: Path, relpath: str) -> Path | None:
    """The segment's file if it resolves inside the recordings root, else None."""
    root = root.resolve()
    path = (root / relpath).resolve()
    return path if path.is_relative_to(root) else None


def _servable(root: Path, segments: Sequence[Segment]) -> list[Segment]:
    """Segments whose path stays inside the root: the index is trusted, not blindly."""
    kept = []
    for seg in segments:
        if _inside(root, seg.path) is None:
            log.error("segment %d path %r leaves the recordings root: refused", seg.id, seg.path)
        else:
            kept.append(seg)
    return kept


def _segment_file(index: SegmentIndex, root: Path, segment_id: int) -> tuple[Segment, Path]:
    segment = index.get(segment_id)
    if segment is None:
        raise HTTPException(404, f"segment {segment_id} not found")
    path = _inside(root, segment.path)
    if path is None:
        raise HTTPException(404, f"segment {segment_id} is missing on disk")
    if not path.is_file():
        raise HTTPException(
            404, f"segment {segment_id} is missing on disk: {_where(root, [segment])}"
        )
    return segment, path


def _where(root: Path, segments: Sequence[Segment]) -> str:
    """Where footage that the index knows but this node cannot read should be. In a
    cluster the usual cause is a worker whose recordings folder is not the API's."""
    first = segments[0]
    return (
        f"{len(segments)} indexed segment(s), e.g. {first.path!r}, expected under {root}; "
        "deleted by retention, or recorded by a worker whose recordings folder is not "
        "shared with this API (mount the same storage.data_dir on every node: "
        "docs/deployment.md)"
    )


def _readable(root: Path, segments: Sequence[Segment]) -> None:
    """404 naming the files when none of the window's indexed segments is on disk."""
    if segments and not any(
        (p := _inside(root, s.path)) is not None and p.is_file() for s in segments
    ):
        raise HTTPException(404, f"footage files not found: {_where(root, segments)}")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:64] or "camera"


def _prune_exports(folder: Path, now: float) -> None:
    for path in folder.glob("*.mp4"):
        try:
            if now - path.stat().st_mtime > EXPORT_KEEP_S:
                path.unlink()
        except OSError:
            pass  # another request pruned or replaced it first


def _cached_clip(
    media_root: Path,
    recordings: Path,
    segments: Sequence[Segment],
    kind: str,
    since_ts: float,
    until_ts: float,
) -> Path:
    """The cut MP4 of the window, cut now unless the same footage was cut before."""
    key = hashlib.sha256(
        repr((kind, since_ts, until_ts, [(s.id, s.path, s.end_ts) for s in segments])).encode()
    ).hexdigest()[:32]
    folder = media_root / "exports" / "clips"
    path = folder / f"{key}.mp4"
    if path.is_file():
        os.utime(path)  # in use: keep it from being pruned
        return path
    _readable(recordings, segments)
    folder.mkdir(parents=True, exist_ok=True)
    _prune_exports(folder, time.time())
    try:
        cut_clip(recordings, segments, since_ts, until_ts, path)
    except FootageMissing as exc:
        raise HTTPException(404, f"{kind}: {exc}") from exc
    return path


def _clip_response(path: Path, filename: str, download: bool, cacheable: bool) -> FileResponse:
    return FileResponse(
        path,
        media_type="video/mp4",
        filename=filename,
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, max-age=3600" if cacheable else "no-store"},
    )


@router.get(
    "/api/cameras/{camera_id}/timeline",
    response_model=TimelineOut,
    dependencies=[Depends(require(*EVERYONE))],
)
def get_timeline(
    index: Segments,
    repo: Repo,
    camera_id: str,
    since_ts: SinceTs,
    until_ts: UntilTs,
) -> TimelineOut:
    """Recorded ranges, gaps and incidents of one camera in ``[since_ts, until_ts)``.

    Ranges are merged segments (closer than 1 s count as continuous) clipped to the
    window; ``incidents`` are those that started in the window (at most 500).
    """
    _check_window(since_ts, until_ts, MAX_TIMELINE_S)
    segments = index.overlapping(camera_id, since_ts, until_ts)
    ranges = [
        (max(a, since_ts), min(b, until_ts)) for a, b in merge_ranges(segments) if b > since_ts
    ]
    incidents = repo.search(
        IncidentQuery(
            camera_ids=[camera_id], since_ts=since_ts, until_ts=until_ts, limit=TIMELINE_INCIDENTS
        )
    )
    return TimelineOut(
        camera_id=camera_id,
        since_ts=since_ts,
        until_ts=until_ts,
        ranges=[TimeRangeOut(start_ts=a, end_ts=b) for a, b in ranges],
        gaps=[
            TimeRangeOut(start_ts=a, end_ts=b) for a, b in gaps_between(ranges, since_ts, until_ts)
        ],
        segments=len(segments),
        bytes=sum(s.bytes for s in segments),
        recorded_s=sum(b - a for a, b in ranges),
        incidents=[
            TimelineIncidentOut(
                id=i.id, type=i.type, severity=i.severity, start_ts=i.start_ts, end_ts=i.end_ts
            )
            for i in incidents
        ],
    )


@router.get(
    "/api/cameras/{camera_id}/footage.mp4",
    response_class=FileResponse,
    responses={
        **_MP4_RESPONSES,
        422: {"description": "bad window (until_ts ≤ since_ts, or longer than 24 h)"},
    },
    dependencies=[Depends(require(*MEDIA))],
)
def get_footage_mp4(
    index: Segments,
    recordings: RecordingsDir,
    media_root: MediaRoot,
    camera_id: str,
    since_ts: SinceTs,
    until_ts: UntilTs,
    download: Annotated[bool, Query(description="attachment instead of inline")] = False,
) -> FileResponse:
    """One MP4 of ``[since_ts, until_ts)`` (at most 24 h), remuxed, never re-encoded.

    It starts on the key frame at or before ``since_ts`` (up to one GOP early) and
    keeps gaps in the recording as gaps in its timeline (the last frame stays up).
    404 when nothing was recorded in the window.
    """
    _check_window(since_ts, until_ts, MAX_EXPORT_S)
    segments = _servable(recordings, index.overlapping(camera_id, since_ts, until_ts))
    if not segments:
        raise HTTPException(
            404,
            f"no footage of camera {camera_id!r} recorded between "
            f"{_utc(since_ts)} and {_utc(until_ts)}",
        )
    path = _cached_clip(media_root, recordings, segments, "footage", since_ts, until_ts)
    name = f"{_safe_name(camera_id)}_{_file_stamp(since_ts)}_{_file_stamp(until_ts)}.mp4"
    # A window whose end may still be recorded can grow: browsers must not keep it.
    complete = segments[-1].end_ts >= until_ts or until_ts < time.time() - SEGMENT_LATE_S
    return _clip_response(path, name, download, cacheable=complete)


@router.get(
    "/api/cameras/{camera_id}/footage.m3u8",
    response_class=Response,
    responses={
        200: {"content": {HLS_MEDIA_TYPE: {}}, "description": "HLS VOD playlist"},
        404: {"description": "nothing recorded in the window"},
        422: {"description": "bad window (until_ts ≤ since_ts, or longer than 24 h)"},
    },
    dependencies=[Depends(require(*MEDIA))],
)
def get_footage_hls(
    index: Segments,
    recordings: RecordingsDir,
    camera_id: str,
    since_ts: SinceTs,
    until_ts: UntilTs,
) -> Response:
    """An HLS VOD playlist of the whole segments that overlap the window (≤ 24 h).

    Each entry carries its wall-clock start (``#EXT-X-PROGRAM-DATE-TIME``);
    ``#EXT-X-DISCONTINUITY`` marks each gap in the recording.
    """
    _check_window(since_ts, until_ts, MAX_EXPORT_S)
    segments = _servable(recordings, index.overlapping(camera_id, since_ts, until_ts))
    if not segments:
        raise HTTPException(
            404,
            f"no footage of camera {camera_id!r} recorded between "
            f"{_utc(since_ts)} and {_utc(until_ts)}",
        )
    return Response(
        hls_playlist(segments),
        media_type=HLS_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


def hls_playlist(segments: Sequence[Segment]) -> str:
    """The VOD playlist of ``segments`` (oldest first), served as MPEG-TS."""
    target_s = max(1, math.ceil(max(s.duration_s for s in segments)))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{target_s}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
    ]
    previous: Segment | None = None
    for seg in segments:
        if previous is not None and seg.start_ts - previous.end_ts > CONTIGUOUS_S:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{_utc(seg.start_ts)}",
            f"#EXTINF:{seg.duration_s:.3f},",
            f"/api/recordings/segments/{seg.id}.ts",
        ]
        previous = seg
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@router.get(
    "/api/recordings/segments/{segment_id}.ts",
    response_class=Response,
    responses={
        200: {"content": {"video/mp2t": {}}, "description": "the segment as MPEG-TS"},
        404: {"description": "unknown segment, or its file is gone"},
    },
    dependencies=[Depends(require(*MEDIA))],
)
def get_segment_ts(index: Segments, recordings: RecordingsDir, segment_id: RowId) -> Response:
    """One segment remuxed to MPEG-TS on the wall clock (for HLS)."""
    segment, path = _segment_file(index, recordings, segment_id)
    try:
        body = to_mpegts(path, segment.start_ts)
    except FootageMissing as exc:  # deleted by retention meanwhile, or damaged
        raise HTTPException(404, f"segment {segment_id}: {exc}") from exc
    return Response(
        body, media_type="video/mp2t", headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get(
    "/api/recordings/segments/{segment_id}.mp4",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the segment file as recorded"},
        206: {"content": {"video/mp4": {}}, "description": "the requested byte range"},
        404: {"description": "unknown segment, or its file is gone"},
    },
    dependencies=[Depends(require(*MEDIA))],
)
def get_segment_mp4(index: Segments, recordings: RecordingsDir, segment_id: RowId) -> FileResponse:
    """One segment file as recorded."""
    _segment, path = _segment_file(index, recordings, segment_id)
    return FileResponse(
        path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get(
    "/api/incidents/{incident_id}/clip.mp4",
    response_class=FileResponse,
    responses={
        **_MP4_RESPONSES,
        425: {"description": "closed, but its post-roll is still being recorded"},
    },
    dependencies=[Depends(require(*MEDIA))],
)
def get_incident_clip(
    index: Segments,
    recordings: RecordingsDir,
    media_root: MediaRoot,
    repo: Repo,
    incident_id: str,
    download: Annotated[bool, Query(description="attachment instead of inline")] = False,
) -> FileResponse:
    """The incident's clip: ``[clip_start_ts, clip_end_ts)``, pre- and post-roll included.

    * closed (``clip_end_ts`` set) and its post-roll is in the past: the clip, cached
      (the cache key holds the window, so a changed ``clip_end_ts`` cuts anew);
    * closed but ``clip_end_ts`` is still in the future: 425 Too Early with
      ``Retry-After``, rather than a clip that silently lacks its post-roll;
    * still open: the footage recorded so far, ``[clip_start_ts, now)``, with
      ``Cache-Control: no-store`` (a segment reaches the index only once complete,
      so the newest seconds show up a segment later);
    * 404 when the incident is unknown or none of its footage is (still) recorded.
    """
    incident = repo.get(incident_id)
    if incident is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    now = time.time()
    closed = incident.clip_end_ts is not None
    until_ts = incident.clip_end_ts if incident.clip_end_ts is not None else now
    if until_ts > now:
        wait_s = math.ceil(until_ts - now)
        raise HTTPException(
            425,
            f"incident {incident_id!r} closed; its post-roll is recorded until "
            f"{_utc(until_ts)}: retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    since_ts = incident.clip_start_ts
    if until_ts <= since_ts:
        until_ts = since_ts + 1e-3  # a zero-length window still shows its key frame
    segments = _servable(recordings, index.overlapping(incident.camera_id, since_ts, until_ts))
    if not segments:
        raise HTTPException(
            404,
            f"no footage of incident {incident_id!r} ({incident.camera_id}, "
            f"{_utc(since_ts)} to {_utc(until_ts)}): not recorded or already deleted",
        )
    if not closed:
        # Up to the newest indexed segment, not to "now": the same footage gives the
        # same cached file, so the Range requests of one playback see one file.
        until_ts = segments[-1].end_ts
    kind = f"incident {incident_id}"
    path = _cached_clip(media_root, recordings, segments, kind, since_ts, until_ts)
    name = f"incident_{_safe_name(incident.camera_id)}_{_file_stamp(incident.start_ts)}.mp4"
    complete = closed and (segments[-1].end_ts >= until_ts or until_ts < now - SEGMENT_LATE_S)
    return _clip_response(path, name, download, cacheable=complete)

"""Recorded footage for command-line tools: time arguments, and one clip cut from
the segment index (``commune-vision replay --camera X --from T1 --to T2``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from core.config import AppConfig
from core.redact import redact_url
from core.storage.db import make_engine
from core.storage.segments import SegmentIndex
from streams.clips import ClipInfo, cut_clip

MAX_REPLAY_S = 24 * 3600.0


def parse_time(text: str, tz: ZoneInfo, option: str) -> float:
    """UTC epoch seconds from epoch seconds or an ISO time (local to ``tz`` unless
    it names an offset), e.g. ``2026-11-22T17:00`` or ``2026-11-22 17:00:30+07:00``."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{option}: {text!r} is not a time; write e.g. 2026-11-22T17:00 "
            f"({tz.key} time) or epoch seconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def recorded_clip(
    config: AppConfig, camera_id: str, since_ts: float, until_ts: float, out_dir: Path
) -> ClipInfo:
    """Cut the camera's recorded footage of the window into one MP4 in ``out_dir``.

    Raises ValueError with a message naming the option at fault.
    """
    if until_ts <= since_ts:
        raise ValueError("--to must be later than --from")
    if until_ts - since_ts > MAX_REPLAY_S:
        raise ValueError("--from/--to: replay at most 24 hours at a time")
    engine = make_engine(config.storage.resolved_database_url)
    try:
        segments = SegmentIndex(engine).overlapping(camera_id, since_ts, until_ts)
    except SQLAlchemyError as exc:
        raise ValueError(
            f"--config: cannot read the recordings index of "
            f"{redact_url(config.storage.resolved_database_url)} ({type(exc).__name__}); "
            "check storage.data_dir / DATABASE_URL, or run `commune-vision db upgrade`"
        ) from exc
    finally:
        engine.dispose()
    if not segments:
        raise ValueError(
            f"--camera {camera_id}: nothing recorded between --from and --to "
            f"(recordings of {redact_url(config.storage.resolved_database_url)})"
        )
    return cut_clip(
        config.storage.resolved_recordings_dir,
        segments,
        since_ts,
        until_ts,
        out_dir / f"{camera_id}-{int(since_ts)}.mp4",
    )

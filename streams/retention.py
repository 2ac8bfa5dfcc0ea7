"""Retention: delete old recording segments so the disk never fills (issue 6).

One :meth:`Retention.run_once` applies, in order:

1. **Evidence lock** - segments overlapping the clip window of an evidence-locked
   incident are never deleted, whatever the policy below says.
2. **Age** - per camera, segments whose end is older than ``record.retain_days``.
   Footage of a camera no longer in the config is kept ``ORPHAN_RETAIN_DAYS`` (7 days,
   the default of ``RecordSettings.retain_days``): long enough to notice a mistaken
   removal, and it still counts against the global quota and the disk guard.
3. **Events mode** - for ``record.mode: events`` cameras, segments that ended more
   than ``events_hold_s`` ago and overlap no incident clip window (an open incident
   keeps everything from its clip start on).
4. **Quotas** - per camera ``record.max_gb``, then over all ``retention.max_gb``:
   the oldest unlocked segments go first until the total is under. GB here are
   10**9 bytes, as the config says.
5. **Disk guard** - when free space on the recordings disk is under
   ``min_free_gb`` or ``min_free_percent`` (the larger), the oldest unlocked
   segments of any camera go until free space is ``PRESSURE_HEADROOM`` above that
   threshold, so the next run does not start again a few seconds of video later.
   A ``disk_pressure`` event goes out once when pressure starts (again, once, if
   nothing deletable is left: recording may then stop), and ``disk_pressure_cleared``
   once free space is back to ``CLEAR_RATIO`` times the threshold.

Deletion removes the file first, then the index rows in batches: a crash in between
leaves rows without files, which :meth:`Retention.reconcile` removes at the next
start. Segments are walked oldest first in pages of the index, never all at once.

:meth:`Retention.stats` is what the store process publishes as
``publish_stats("recording", ...)`` and ``/metrics`` renders::

    {
      "updated_ts": 1795400000.0,           # now_ts of the last run (UTC), null before
      "runs": 12,
      "last_run_s": 0.04,                   # how long the last run took
      "cameras": {"gate": {"segments": 13, "bytes": 5230000,     # after the last run;
                           "oldest_ts": 1795390000.0,          # configured cameras
                           "newest_ts": 1795400000.0}},        # with none read 0/null
      "deleted": {"gate": {"age": {"segments": 4, "bytes": 1600000},  # cumulative since
                           "camera_quota": {...}}},                  # the process started
      "disk": {"path": "/data/recordings", "total_bytes": 1000000000000,
               "free_bytes": 400000000000, "threshold_bytes": 50000000000,
               "pressure": false}           # null values until the first run
    }

Reasons in ``deleted``: ``age``, ``events``, ``camera_quota``, ``global_quota``,
``disk_pressure``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import av

from core.config import CameraConfig, RetentionConfig
from core.storage.segments import Segment, SegmentIndex
from core.types import SegmentClosed
from streams.recorder import PART_SUFFIX, probe_duration_s, start_ts_from_name

log = logging.getLogger(__name__)

REASON_AGE = "age"
REASON_EVENTS = "events"
REASON_CAMERA_QUOTA = "camera_quota"
REASON_GLOBAL_QUOTA = "global_quota"
REASON_DISK = "disk_pressure"

ORPHAN_RETAIN_DAYS = 7.0
GB = 10**9
DAY_S = 86400.0
PAGE_SIZE = 500
ROW_BATCH = 200  # index rows removed per transaction
PRESSURE_HEADROOM = 1.1  # the disk guard frees up to this times the threshold
CLEAR_RATIO = 1.2  # pressure is over at this times the threshold: no flapping
# The recorder creates its hour folder just before opening a file in it: a folder
# is removed only an hour after its hour is over, clear of clock skew.
PRUNE_AFTER_S = 3600.0


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


Publisher = Callable[[str, dict[str, Any]], None]
DiskUsageFn = Callable[[Path], tuple[int, int, int]]  # (total, used, free), as shutil's


@dataclass
class RetentionReport:
    """What one run deleted: ``{camera: {reason: n}}`` for segments and bytes."""

    deleted_segments: dict[str, dict[str, int]] = field(default_factory=dict)
    deleted_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    free_bytes: int | None = None
    threshold_bytes: int = 0
    disk_pressure: bool = False

    @property
    def total_segments(self) -> int:
        return sum(n for per in self.deleted_segments.values() for n in per.values())

    @property
    def total_bytes(self) -> int:
        return sum(n for per in self.deleted_bytes.values() for n in per.values())

    def segments(self, reason: str) -> int:
        return sum(per.get(reason, 0) for per in self.deleted_segments.values())

    def add(self, segment: Segment, reason: str) -> None:
        per_cam = self.deleted_segments.setdefault(segment.camera_id, {})
        per_cam[reason] = per_cam.get(reason, 0) + 1
        per_bytes = self.deleted_bytes.setdefault(segment.camera_id, {})
        per_bytes[reason] = per_bytes.get(reason, 0) + segment.bytes


class ReconcileReport(NamedTuple):
    indexed: int  # finished files that were not in the index
    removed_rows: int  # index rows whose file was gone
    part_files: int  # unfinished ``.part`` files seen (the recorder's; left alone)


def _overlaps(segment: Segment, windows: list[tuple[float, float]]) -> bool:
    return any(segment.start_ts < end and segment.end_ts > start for start, end in windows)


class Retention:
    """Applies the retention policy to the segment index and the files under ``root``.

    Runs in the store process (the index's single writer), one call at a time.
    ``cameras`` is called on every run because cameras change at runtime;
    ``disk_usage`` is the environment (``shutil.disk_usage`` unless told otherwise).
    """

    def __init__(
        self,
        index: SegmentIndex,
        root: Path,
        cameras: Callable[[], list[CameraConfig]],
        config: RetentionConfig,
        publish: Publisher,
        disk_usage: DiskUsageFn = shutil.disk_usage,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._index = index
        self._root = root
        self._cameras = cameras
        self._config = config
        self._publish = publish
        self._disk_usage = disk_usage
        self._page_size = page_size
        self._deleted: dict[str, dict[str, dict[str, int]]] = {}
        self._usage: dict[str, dict[str, Any]] = {}
        self._disk: dict[str, Any] = {"path": str(root), "pressure": False}
        self._disk |= dict.fromkeys(("total_bytes", "free_bytes", "threshold_bytes"))
        self._pressure = False
        self._exhausted_reported = False
        self._runs = 0
        self._last_run_s = 0.0
        self._updated_ts: float | None = None
        self._pending: list[int] = []
        self._emptied: dict[Path, float] = {}  # hour folder -> when its hour ended

    # -- the policy ------------------------------------------------------------------
    def run_once(self, now_ts: float) -> RetentionReport:
        started = time.monotonic()
        report = RetentionReport()
        cameras = {c.id: c for c in self._cameras()}
        camera_ids = sorted(set(cameras) | set(self._index.camera_ids()))
        for cam in camera_ids:
            config = cameras.get(cam)
            retain_days = config.record.retain_days if config else ORPHAN_RETAIN_DAYS
            self._delete_ended(cam, now_ts - retain_days * DAY_S, REASON_AGE, report)
        for cam in camera_ids:
            config = cameras.get(cam)
            if config is not None and config.record.mode == "events":
                cutoff_ts = now_ts - config.record.events_hold_s
                self._delete_ended(cam, cutoff_ts, REASON_EVENTS, report)
        self._flush()
        usage = {u.camera_id: u.bytes for u in self._index.usage()}
        for cam, config in sorted(cameras.items()):
            if config.record.max_gb is not None:
                limit_bytes = int(config.record.max_gb * GB)
                usage[cam] = self._delete_over_quota(
                    cam, usage.get(cam, 0), limit_bytes, REASON_CAMERA_QUOTA, report
                )
        if self._config.max_gb is not None:
            limit_bytes = int(self._config.max_gb * GB)
            total_bytes = sum(usage.values())
            self._delete_over_quota(None, total_bytes, limit_bytes, REASON_GLOBAL_QUOTA, report)
        self._disk_guard(report)
        self._flush()
        self._finish_run(report, list(cameras), now_ts, time.monotonic() - started)
        return report

    def _delete_ended(
        self, camera_id: str, cutoff_ts: float, reason: str, report: RetentionReport
    ) -> None:
        """Segments that ended by ``cutoff_ts``; in events mode, unless near an incident."""
        keep_incidents = reason == REASON_EVENTS
        for segment in self._walk(camera_id, before_ts=cutoff_ts, keep_incidents=keep_incidents):
            if segment.end_ts <= cutoff_ts:
                self._delete(segment, reason, report)

    def _delete_over_quota(
        self,
        camera_id: str | None,
        used_bytes: int,
        limit_bytes: int,
        reason: str,
        report: RetentionReport,
    ) -> int:
        """Oldest unlocked first until ``used_bytes`` is under the limit; the new total."""
        if used_bytes <= limit_bytes:
            return used_bytes
        for segment in self._walk(camera_id, before_ts=None, keep_incidents=False):
            if self._delete(segment, reason, report):
                used_bytes -= segment.bytes
            if used_bytes <= limit_bytes:
                break
        return used_bytes

    def _disk_guard(self, report: RetentionReport) -> None:
        disk = self._measure()
        threshold = max(
            int(self._config.min_free_gb * GB),
            int(disk.total * self._config.min_free_percent / 100),
        )
        report.threshold_bytes = threshold
        if threshold <= 0:
            self._clear_pressure(disk, threshold)
            return
        if disk.free >= threshold:
            if disk.free >= threshold * CLEAR_RATIO:
                self._clear_pressure(disk, threshold)
            return
        target = int(threshold * PRESSURE_HEADROOM)
        started = not self._pressure
        self._pressure = report.disk_pressure = True
        freed = 0
        for segment in self._walk(None, before_ts=None, keep_incidents=False):
            if self._delete(segment, REASON_DISK, report):
                freed += segment.bytes
            # Counting what was freed saves a measurement per file; the disk itself
            # decides, as other writers (the database, logs) share it.
            if disk.free + freed >= target:
                self._flush()
                disk = self._measure()
                freed = 0
                if disk.free >= target:
                    break
        else:
            self._flush()
            disk = self._measure()
        deleted = report.segments(REASON_DISK)
        exhausted = disk.free < threshold
        if started or (exhausted and not self._exhausted_reported):
            self._exhausted_reported = exhausted
            message = (
                f"free space {disk.free / GB:.2f} GB is under {threshold / GB:.2f} GB and no "
                "unlocked segment is left to delete: recording may stop; free space or unlock "
                "evidence"
                if exhausted
                else f"free space was under {threshold / GB:.2f} GB: deleted the {deleted} "
                "oldest segments"
            )
            log.warning("recordings disk %s: %s", self._root, message)
            self._publish(
                "disk_pressure",
                {
                    "free_bytes": disk.free,
                    "threshold_bytes": threshold,
                    "deleted_segments": deleted,
                    "path": str(self._root),
                    "exhausted": exhausted,
                    "message": message,
                },
            )

    def _clear_pressure(self, disk: DiskUsage, threshold: int) -> None:
        if not self._pressure:
            return
        self._pressure = self._exhausted_reported = False
        log.info("recordings disk %s: free space is back (%d bytes)", self._root, disk.free)
        self._publish(
            "disk_pressure_cleared",
            {
                "free_bytes": disk.free,
                "threshold_bytes": threshold,
                "path": str(self._root),
                "message": "free space is back above the threshold",
            },
        )

    # -- walking and deleting ------------------------------------------------------
    def _walk(
        self, camera_id: str | None, before_ts: float | None, keep_incidents: bool
    ) -> Iterator[Segment]:
        """Segments oldest first, page by page, less those an incident keeps.

        Evidence-locked windows always keep; ``keep_incidents`` keeps every incident's
        window (events mode). Rows deleted while walking do not disturb the pages:
        each page starts after the last segment of the one before.
        """
        self._flush()  # rows deleted by an earlier walk must not come back
        after: tuple[float, int] | None = None
        while True:
            page = self._index.oldest(camera_id, before_ts, self._page_size, after=after)
            if not page:
                return
            windows: dict[str, list[tuple[float, float]]] = {}
            for cam in {s.camera_id for s in page}:
                mine = [s for s in page if s.camera_id == cam]
                windows[cam] = self._index.kept_windows(
                    cam,
                    min(s.start_ts for s in mine),
                    max(s.end_ts for s in mine),
                    locked_only=not keep_incidents,
                )
            for segment in page:
                if not _overlaps(segment, windows[segment.camera_id]):
                    yield segment
            if len(page) < self._page_size:
                return
            after = (page[-1].start_ts, page[-1].id)

    def _delete(self, segment: Segment, reason: str, report: RetentionReport) -> bool:
        """Remove the file now and queue the row; False if the file would not go."""
        path = self._root / segment.path
        try:
            path.unlink(missing_ok=True)  # already gone: only the row is left to remove
        except OSError as exc:
            log.warning("cannot delete segment %s: %s", path, exc)
            return False
        report.add(segment, reason)
        per_reason = self._deleted.setdefault(segment.camera_id, {})
        counts = per_reason.setdefault(reason, {"segments": 0, "bytes": 0})
        counts["segments"] += 1
        counts["bytes"] += segment.bytes
        self._pending.append(segment.id)
        if len(self._pending) >= ROW_BATCH:
            self._flush()
        hour_start_ts = segment.start_ts - segment.start_ts % 3600
        self._emptied[path.parent] = hour_start_ts + 3600
        return True

    def _flush(self) -> None:
        if self._pending:
            self._index.remove(self._pending)
            self._pending = []  # only now: a failed removal is retried by the next flush

    def _prune_folders(self, now_ts: float) -> None:
        """Remove the hour (and day) folders deletion emptied, once no longer in use."""
        for hour_dir, hour_end_ts in list(self._emptied.items()):
            if hour_end_ts + PRUNE_AFTER_S <= now_ts:
                del self._emptied[hour_dir]
                if _rmdir_if_empty(hour_dir):
                    _rmdir_if_empty(hour_dir.parent)

    def _measure(self) -> DiskUsage:
        path = self._root
        while not path.exists() and path != path.parent:
            path = path.parent  # before the first segment, the folder may not exist yet
        total, used, free = self._disk_usage(path)
        disk = DiskUsage(int(total), int(used), int(free))
        self._disk.update(total_bytes=disk.total, free_bytes=disk.free)
        return disk

    def _finish_run(
        self, report: RetentionReport, configured: list[str], now_ts: float, took_s: float
    ) -> None:
        self._prune_folders(now_ts)
        # A configured camera with no footage left reads 0 rather than vanishing.
        empty = {"segments": 0, "bytes": 0, "oldest_ts": None, "newest_ts": None}
        self._usage = {cam: dict(empty) for cam in configured}
        self._usage |= {
            u.camera_id: {
                "segments": u.segments,
                "bytes": u.bytes,
                "oldest_ts": u.oldest_ts,
                "newest_ts": u.newest_ts,
            }
            for u in self._index.usage()
        }
        report.free_bytes = self._disk["free_bytes"]
        self._disk.update(threshold_bytes=report.threshold_bytes, pressure=self._pressure)
        self._runs += 1
        self._last_run_s = took_s
        self._updated_ts = now_ts
        if report.total_segments:
            log.info(
                "retention deleted %d segments (%.1f MB): %s",
                report.total_segments,
                report.total_bytes / 1e6,
                report.deleted_segments,
            )

    # -- reporting -----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The ``recording`` stats entry (shape in the module docstring)."""
        return {
            "updated_ts": self._updated_ts,
            "runs": self._runs,
            "last_run_s": round(self._last_run_s, 4),
            "cameras": {cam: dict(u) for cam, u in self._usage.items()},
            "deleted": {
                cam: {reason: dict(c) for reason, c in per.items()}
                for cam, per in self._deleted.items()
            },
            "disk": dict(self._disk),
        }

    # -- start-up ------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Make the index and the files agree, after a crash or a copied folder.

        Finished segments missing from the index are added (start from the name, end
        from the file); rows whose file is gone are removed. ``.part`` files belong
        to a recorder that may be writing them now: they are only counted.
        """
        indexed = parts = 0
        if self._root.is_dir():
            for camera_dir in sorted(self._root.iterdir()):
                if camera_dir.is_dir() and not camera_dir.name.startswith("."):
                    n, p = self._index_camera_files(camera_dir)
                    indexed, parts = indexed + n, parts + p
        removed = 0
        for cam in self._index.camera_ids():
            for segment in self._walk_all(cam):
                if not (self._root / segment.path).is_file():
                    self._pending.append(segment.id)
                    removed += 1
                    if len(self._pending) >= ROW_BATCH:
                        self._flush()
        self._flush()
        if indexed or removed:
            log.warning(
                "recordings: indexed %d unindexed segment(s), removed %d row(s) without file",
                indexed,
                removed,
            )
        return ReconcileReport(indexed, removed, parts)

    def _index_camera_files(self, camera_dir: Path) -> tuple[int, int]:
        known = self._index.paths(camera_dir.name)
        indexed = parts = 0
        for path in sorted(camera_dir.rglob("*")):
            if path.name.endswith(PART_SUFFIX):
                parts += 1
                continue
            if path.suffix != ".mp4" or path.name.startswith(".") or not path.is_file():
                continue
            rel = path.relative_to(self._root).as_posix()
            if rel in known:
                continue
            start_ts = start_ts_from_name(rel)
            if start_ts is None:
                log.warning("recordings: %s is not a segment name; left alone", rel)
                continue
            try:
                duration_s = probe_duration_s(path)
            except (av.error.FFmpegError, IndexError) as exc:
                log.warning("recordings: %s does not open (%s); left alone", rel, exc)
                continue
            size = path.stat().st_size
            event = SegmentClosed(camera_dir.name, rel, start_ts, start_ts + duration_s, size)
            indexed += int(self._index.add(event))
        return indexed, parts

    def _walk_all(self, camera_id: str) -> Iterator[Segment]:
        after: tuple[float, int] | None = None
        while page := self._index.oldest(camera_id, None, self._page_size, after=after):
            yield from page
            after = (page[-1].start_ts, page[-1].id)


def _rmdir_if_empty(path: Path) -> bool:
    try:
        os.rmdir(path)
    except OSError:
        return False  # not empty (or already gone): nothing to prune
    return True

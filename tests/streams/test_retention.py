"""Retention on real segments: the real recorder remuxes a real clip, the real index
keeps them in real SQLite, and retention deletes real files.

Only the disk's free space is simulated where a test needs a full disk: it is
computed from the bytes really left under the recordings folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.bus import EVENT_STREAM, EventBus
from core.config import CameraConfig, RecordSettings, RetentionConfig
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.models import IncidentRow
from core.storage.segments import Segment, SegmentIndex
from core.types import SegmentClosed, new_incident_id
from streams.recorder import SegmentRecorder
from streams.retention import GB, Retention
from tests.conftest import VideoFinder

T0 = 1_795_400_000.0
DAY_S = 86400.0
CLIP = "street_parking_ipcam_day.mp4"
NO_DISK_GUARD = RetentionConfig(min_free_gb=0.0, min_free_percent=0.0)


def record_clip(
    root: Path,
    camera_id: str,
    t0: float,
    clip: Path,
    segment_s: float = 4.0,
    until_s: float | None = None,
    sink: list[SegmentClosed] | None = None,
) -> tuple[list[SegmentClosed], SegmentRecorder]:
    """Feed a clip's packets to the real recorder as fast as they demux, stamped with
    capture times ``t0 + pts``. ``until_s`` stops early and leaves the segment open."""
    closed: list[SegmentClosed] = [] if sink is None else sink
    recorder = SegmentRecorder(camera_id, root, segment_s, closed.append)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        first_pts: int | None = None
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue  # the demuxer's flush packet
            first_pts = packet.pts if first_pts is None else first_pts
            offset_s = float((packet.pts - first_pts) * time_base)
            if until_s is not None and offset_s > until_s:
                return closed, recorder
            recorder.on_packet(camera_id, packet, t0 + offset_s)
    recorder.end_session(camera_id)
    assert recorder.health.record_error is None
    return closed, recorder


def add_incident(
    engine: Engine, camera_id: str, clip_start_ts: float, clip_end_ts: float | None, locked: bool
) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            IncidentRow(
                id=new_incident_id(clip_start_ts),
                camera_id=camera_id,
                rule="yard-people",
                type="intrusion",
                severity="high",
                labels=["person"],
                track_ids=[3],
                zone=None,
                start_ts=clip_start_ts + 1,
                end_ts=None if clip_end_ts is None else clip_end_ts - 1,
                peak_score=0.8,
                clip_start_ts=clip_start_ts,
                clip_end_ts=clip_end_ts,
                status="open" if clip_end_ts is None else "closed",
                snapshot_path=None,
                created_ts=clip_start_ts,
                details={},
                evidence_locked=locked,
            )
        )


def camera(camera_id: str, **record: Any) -> CameraConfig:
    return CameraConfig(
        id=camera_id, url=f"rtsp://10.0.0.9/{camera_id}", record=RecordSettings(**record)
    )


def all_segments(index: SegmentIndex) -> list[Segment]:
    return index.oldest(None, limit=100_000)


def overlaps(seg: SegmentClosed | Segment, start_ts: float, end_ts: float) -> bool:
    return seg.start_ts < end_ts and seg.end_ts > start_ts


def assert_consistent(index: SegmentIndex, root: Path) -> None:
    """Every row has its file, every finished file has its row, and each one plays."""
    rows = {s.path for s in all_segments(index)}
    files = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*.mp4")
        if p.is_file() and not p.name.startswith(".")
    }
    assert rows == files
    for rel in files:
        with av.open(str(root / rel)) as container:
            video = container.streams.video[0]
            first = next(p for p in container.demux(video) if p.size)
            assert first.is_keyframe


@dataclass
class Rig:
    engine: Engine
    index: SegmentIndex
    root: Path
    clip: Path
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, camera_id: str, t0: float, **kwargs: Any) -> list[SegmentClosed]:
        closed, _ = record_clip(self.root, camera_id, t0, self.clip, **kwargs)
        for event in closed:
            assert self.index.add(event)
        return closed

    def retention(
        self,
        cameras: list[CameraConfig],
        config: RetentionConfig = NO_DISK_GUARD,
        **kwargs: Any,
    ) -> Retention:
        return Retention(
            self.index,
            self.root,
            lambda: cameras,
            config,
            lambda kind, payload: self.events.append((kind, payload)),
            **kwargs,
        )

    def paths(self, camera_id: str) -> set[str]:
        return self.index.paths(camera_id)


@pytest.fixture()
def rig(tmp_path: Path, video: VideoFinder) -> Iterator[Rig]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield Rig(engine, SegmentIndex(engine), tmp_path / "recordings", video(CLIP))
    engine.dispose()


def test_age_limit_deletes_whole_old_segments_keeps_evidence_and_orphans_default(
    rig: Rig,
) -> None:
    gate = rig.record("gate", T0)
    removed_old = rig.record("removed", T0 - 8 * DAY_S)  # camera no longer configured
    removed_recent = rig.record("removed", T0 - 5 * DAY_S)
    assert len(gate) >= 10
    add_incident(rig.engine, "gate", T0 + 2, T0 + 3, locked=True)
    now_ts = T0 + DAY_S + 30  # gate keeps 1 day: footage ending before T0 + 30 goes
    retention = rig.retention([camera("gate", retain_days=1.0)], page_size=3)

    report = retention.run_once(now_ts)

    locked = {s.path for s in gate if overlaps(s, T0 + 2, T0 + 3)}
    assert len(locked) == 1
    expired = {s.path for s in gate if s.end_ts <= T0 + 30} - locked
    assert expired and len(expired) < len(gate) - 1
    assert rig.paths("gate") == {s.path for s in gate} - expired
    assert rig.paths("removed") == {s.path for s in removed_recent}  # 7 days by default
    assert report.deleted_segments == {
        "gate": {"age": len(expired)},
        "removed": {"age": len(removed_old)},
    }
    assert report.deleted_bytes["removed"]["age"] == sum(s.bytes for s in removed_old)
    for path in expired | {s.path for s in removed_old}:
        assert not (rig.root / path).exists()
    # The emptied hour and day folders of the removed camera went with the files.
    assert not (rig.root / removed_old[0].path).parent.parent.exists()
    assert (rig.root / "removed").is_dir()
    assert_consistent(rig.index, rig.root)

    again = retention.run_once(now_ts)
    assert again.total_segments == 0
    stats = retention.stats()
    assert stats["deleted"]["gate"]["age"] == {
        "segments": len(expired),
        "bytes": sum(s.bytes for s in gate if s.path in expired),
    }
    assert stats["cameras"]["gate"]["segments"] == len(gate) - len(expired)
    assert stats["runs"] == 2


def test_camera_quota_deletes_oldest_first_and_keeps_locked_evidence(rig: Rig) -> None:
    gate = rig.record("gate", T0)
    yard = rig.record("yard", T0)
    add_incident(rig.engine, "gate", T0 + 15, T0 + 20, locked=True)
    locked = {s.path for s in gate if overlaps(s, T0 + 15, T0 + 20)}
    assert len(locked) == 1 and gate[0].path not in locked
    limit_bytes = sum(s.bytes for s in gate) // 4
    # The expected outcome, walked by hand: oldest unlocked first until under.
    used, expected_deleted = sum(s.bytes for s in gate), set()
    for seg in sorted(gate, key=lambda s: s.start_ts):
        if used <= limit_bytes:
            break
        if seg.path not in locked:
            expected_deleted.add(seg.path)
            used -= seg.bytes
    retention = rig.retention(
        [camera("gate", max_gb=limit_bytes / GB), camera("yard")], page_size=3
    )

    report = retention.run_once(T0 + 120)

    kept = rig.paths("gate")
    assert kept == {s.path for s in gate} - expected_deleted
    assert locked <= kept  # evidence survives, although it is among the oldest
    assert sum(s.bytes for s in gate if s.path in kept) <= limit_bytes
    newest_deleted = max(s.start_ts for s in gate if s.path in expected_deleted)
    assert all(s.start_ts > newest_deleted for s in gate if s.path in kept - locked)
    assert report.deleted_segments == {"gate": {"camera_quota": len(expected_deleted)}}
    assert rig.paths("yard") == {s.path for s in yard}
    assert_consistent(rig.index, rig.root)


def test_global_quota_deletes_the_oldest_of_all_cameras(rig: Rig) -> None:
    gate = rig.record("gate", T0)
    yard = rig.record("yard", T0 + 40)  # interleaves with gate's second half
    everything = sorted(gate + yard, key=lambda s: s.start_ts)
    limit_bytes = sum(s.bytes for s in everything) // 2
    used, expected_deleted = sum(s.bytes for s in everything), set()
    for seg in everything:
        if used <= limit_bytes:
            break
        expected_deleted.add(seg.path)
        used -= seg.bytes
    config = RetentionConfig(max_gb=limit_bytes / GB, min_free_gb=0.0, min_free_percent=0.0)
    retention = rig.retention([camera("gate"), camera("yard")], config, page_size=4)

    report = retention.run_once(T0 + 200)

    remaining = rig.paths("gate") | rig.paths("yard")
    assert remaining == {s.path for s in everything} - expected_deleted
    assert sum(s.bytes for s in everything if s.path in remaining) <= limit_bytes
    assert report.segments("global_quota") == len(expected_deleted)
    expected_per_camera: dict[str, dict[str, int]] = {}
    for seg in everything:
        if seg.path in expected_deleted:
            per = expected_per_camera.setdefault(seg.camera_id, {"global_quota": 0})
            per["global_quota"] += 1
    assert report.deleted_segments == expected_per_camera
    assert set(expected_per_camera) == {"gate", "yard"}  # the walk crossed cameras
    oldest_left = min(s.start_ts for s in everything if s.path in remaining)
    assert all(s.start_ts <= oldest_left for s in everything if s.path in expected_deleted)
    assert_consistent(rig.index, rig.root)


def test_events_mode_keeps_only_footage_near_incidents(rig: Rig) -> None:
    gate = rig.record("gate", T0)
    yard = rig.record("yard", T0)
    street = rig.record("street", T0)
    add_incident(rig.engine, "gate", T0 + 23, T0 + 25, locked=False)  # a closed incident
    add_incident(rig.engine, "yard", T0 + 40, None, locked=False)  # still open
    cameras = [
        camera("gate", mode="events", events_hold_s=30.0),
        camera("yard", mode="events", events_hold_s=30.0),
        camera("street"),  # continuous: everything stays
    ]
    retention = rig.retention(cameras, page_size=2)
    now_ts = T0 + 90  # segments ending after T0 + 60 still wait for an incident

    report = retention.run_once(now_ts)

    near_incident = {s.path for s in gate if overlaps(s, T0 + 23, T0 + 25)}
    waiting = {s.path for s in gate if s.end_ts > T0 + 60}
    assert near_incident and waiting
    assert rig.paths("gate") == near_incident | waiting
    assert rig.paths("yard") == {s.path for s in yard if s.end_ts > T0 + 40}
    assert rig.paths("street") == {s.path for s in street}
    assert report.deleted_segments["gate"] == {"events": len(gate) - len(near_incident | waiting)}
    assert set(report.deleted_segments) == {"gate", "yard"}
    assert_consistent(rig.index, rig.root)


@dataclass
class SimulatedDisk:
    """A disk whose used space is what is really left under the recordings folder."""

    root: Path
    capacity_bytes: int

    def __call__(self, path: Path) -> tuple[int, int, int]:
        used = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return self.capacity_bytes, used, self.capacity_bytes - used


def _new_events(client: redis.Redis, after_id: bytes) -> list[tuple[str, dict[str, Any]]]:
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]], client.xrange(EVENT_STREAM, min=b"(" + after_id)
    )
    return [(f[b"kind"].decode(), json.loads(f[b"data"])) for _, f in entries]


def test_low_disk_deletes_oldest_and_reports_pressure_once(rig: Rig, valkey_url: str) -> None:
    gate = rig.record("gate", T0)
    yard = rig.record("yard", T0 + 20)
    street = rig.record("street", T0 + 40)
    segments = gate + yard + street
    add_incident(rig.engine, "gate", T0 + 3, T0 + 4, locked=True)
    locked = {s.path for s in gate if overlaps(s, T0 + 3, T0 + 4)}
    total_bytes = sum(s.bytes for s in segments)
    assert total_bytes > 4_000_000
    disk = SimulatedDisk(rig.root, capacity_bytes=total_bytes + 8_000_000)  # 8 MB free
    config = RetentionConfig(min_free_gb=0.01, min_free_percent=1.0)  # 10 MB is the larger
    bus = EventBus(valkey_url)
    client = redis.Redis.from_url(valkey_url)
    last = cast(list[tuple[bytes, Any]], client.xrevrange(EVENT_STREAM, count=1))
    marker = last[0][0] if last else b"0-0"
    retention = Retention(
        rig.index,
        rig.root,
        lambda: [camera("gate"), camera("yard"), camera("street")],
        config,
        bus.publish_event,
        disk_usage=disk,
        page_size=4,
    )

    first = retention.run_once(T0 + 300)

    assert first.disk_pressure and first.threshold_bytes == 10_000_000
    # Freed to 10 % above the threshold, so that the next run does not start again.
    assert first.free_bytes is not None and first.free_bytes >= 11_000_000
    deleted = first.segments("disk_pressure")
    assert deleted > 0 and first.total_segments == deleted
    remaining = rig.paths("gate") | rig.paths("yard") | rig.paths("street")
    assert locked <= remaining
    oldest_left = min(s.start_ts for s in segments if s.path in remaining - locked)
    gone = [s for s in segments if s.path not in remaining]
    assert all(s.start_ts < oldest_left for s in gone)
    events = _new_events(client, marker)
    assert [kind for kind, _ in events] == ["disk_pressure"]
    payload = events[0][1]
    assert payload["deleted_segments"] == deleted
    assert payload["threshold_bytes"] == 10_000_000
    assert payload["free_bytes"] == first.free_bytes and not payload["exhausted"]
    assert payload["path"] == str(rig.root)

    second = retention.run_once(T0 + 330)  # still near the threshold: no new event
    assert second.total_segments == 0
    assert len(_new_events(client, marker)) == 1

    disk.capacity_bytes += 50_000_000  # space was freed elsewhere
    third = retention.run_once(T0 + 360)
    assert not third.disk_pressure and third.total_segments == 0
    assert retention.run_once(T0 + 390).total_segments == 0
    events = _new_events(client, marker)
    assert [kind for kind, _ in events] == ["disk_pressure", "disk_pressure_cleared"]
    assert events[1][1]["free_bytes"] == third.free_bytes
    assert retention.stats()["disk"]["pressure"] is False
    assert_consistent(rig.index, rig.root)
    bus.close()
    client.close()


def test_disk_full_of_evidence_warns_that_recording_may_stop(rig: Rig) -> None:
    gate = rig.record("gate", T0)
    yard = rig.record("yard", T0)
    add_incident(rig.engine, "gate", T0 - 10, T0 + 100, locked=True)  # all of gate
    disk = SimulatedDisk(rig.root, capacity_bytes=sum(s.bytes for s in gate + yard) + 10_000)
    config = RetentionConfig(min_free_gb=1.0, min_free_percent=0.0)
    retention = rig.retention([camera("gate"), camera("yard")], config, disk_usage=disk)

    report = retention.run_once(T0 + 300)

    assert report.deleted_segments == {"yard": {"disk_pressure": len(yard)}}
    assert rig.paths("gate") == {s.path for s in gate}
    assert [kind for kind, _ in rig.events] == ["disk_pressure"]
    payload = rig.events[0][1]
    assert payload["exhausted"] is True and "recording may stop" in payload["message"]
    assert payload["deleted_segments"] == len(yard)
    assert retention.run_once(T0 + 330).total_segments == 0
    assert len(rig.events) == 1  # said once, not every run
    assert retention.stats()["disk"]["pressure"] is True
    assert_consistent(rig.index, rig.root)


def test_reconcile_indexes_strays_removes_orphan_rows_and_leaves_part_files(rig: Rig) -> None:
    closed, _ = record_clip(rig.root, "gate", T0, rig.clip)
    stray, lost = closed[3], closed[6]
    for event in closed:
        if event is not stray:
            rig.index.add(event)
    (rig.root / lost.path).unlink()  # e.g. deleted by hand, or a crash mid-deletion
    # A recorder still writing: its unfinished segment is a hidden .part file.
    late: list[SegmentClosed] = []
    _, recorder = record_clip(rig.root, "gate", T0 + 3600, rig.clip, until_s=20.0, sink=late)
    parts = list(rig.root.rglob("*.part"))
    assert len(parts) == 1
    retention = rig.retention([camera("gate")])

    report = retention.reconcile()

    assert report == (1 + len(late), 1, 1)
    assert parts[0].exists()
    by_path = {s.path: s for s in all_segments(rig.index)}
    assert lost.path not in by_path
    found = by_path[stray.path]
    assert found.camera_id == "gate" and found.bytes == stray.bytes
    assert found.start_ts == pytest.approx(stray.start_ts, abs=0.25)
    assert found.end_ts == pytest.approx(stray.end_ts, abs=0.25)

    recorder.end_session("gate")  # the .part becomes a finished segment
    assert not parts[0].exists()
    assert retention.reconcile() == (1, 0, 0)
    assert_consistent(rig.index, rig.root)
    shutil.rmtree(rig.root)
    # The finished .part was announced to ``late`` too; ``lost`` had no row left.
    assert retention.reconcile() == (0, len(closed) - 1 + len(late), 0)
    assert all_segments(rig.index) == []

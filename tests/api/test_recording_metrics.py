"""Recording metrics: a real retention run publishes its stats to a real Valkey, and
``/metrics`` renders them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.config import RetentionConfig
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import SegmentIndex
from core.types import SegmentClosed
from streams.retention import GB, Retention
from tests.conftest import VideoFinder
from tests.streams.test_retention import T0, camera, record_clip

MetricValues = dict[tuple[str, tuple[tuple[str, str], ...]], float]
GATE = (("camera", "gate"),)
YARD = (("camera", "yard"),)
GATE_QUOTA = (("camera", "gate"), ("reason", "camera_quota"))
YARD_AGE = (("camera", "yard"), ("reason", "age"))
NOW_TS = T0 + 86400 + 10  # yard keeps one day: what ended before T0 + 10 goes


@dataclass
class Setup:
    retention: Retention
    bus: EventBus
    settings: ApiSettings
    gate: list[SegmentClosed]
    yard: list[SegmentClosed]
    free_bytes: list[int]  # what the simulated disk reports as free

    def publish_and_scrape(self) -> MetricValues:
        self.bus.publish_stats("recording", self.retention.stats())
        with TestClient(create_app(self.settings)) as client:
            response = client.get("/metrics")
        assert response.status_code == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    @property
    def newest_gate(self) -> SegmentClosed:
        return max(self.gate, key=lambda s: s.start_ts)


@pytest.fixture()
def setup(tmp_path: Path, valkey_url: str, video: VideoFinder) -> Iterator[Setup]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    index = SegmentIndex(engine)
    root = tmp_path / "recordings"
    clip = video("motorbikes_etle_cctv.mp4")
    gate, _ = record_clip(root, "gate", T0, clip)
    yard, _ = record_clip(root, "yard", T0, clip)
    for event in gate + yard:
        assert index.add(event)
    assert len(gate) >= 3
    newest = max(gate, key=lambda s: s.start_ts)
    # Gate's quota holds only its newest segment.
    cameras = [camera("gate", max_gb=newest.bytes / GB), camera("yard", retain_days=1.0)]
    free_bytes = [123_456_789_000]
    retention = Retention(
        index,
        root,
        lambda: cameras,
        RetentionConfig(min_free_gb=1.0, min_free_percent=0.0),
        lambda kind, payload: None,
        disk_usage=lambda path: (500 * GB, 500 * GB - free_bytes[0], free_bytes[0]),
    )
    bus = EventBus(valkey_url)
    settings = ApiSettings(database_url=url, redis_url=valkey_url, media_root=tmp_path)
    yield Setup(retention, bus, settings, gate, yard, free_bytes)
    bus.close()
    engine.dispose()


def test_usage_deletions_and_disk_are_exported(setup: Setup) -> None:
    setup.retention.run_once(NOW_TS)

    values = setup.publish_and_scrape()

    newest = setup.newest_gate
    gate_deleted = [s for s in setup.gate if s is not newest]
    yard_deleted = [s for s in setup.yard if s.end_ts <= T0 + 10]
    yard_left = [s for s in setup.yard if s not in yard_deleted]
    assert gate_deleted and yard_deleted and yard_left
    assert values[("cv_recording_bytes", GATE)] == newest.bytes
    assert values[("cv_recording_segments", GATE)] == 1
    assert values[("cv_recording_oldest_timestamp_seconds", GATE)] == newest.start_ts
    assert values[("cv_recording_segments", YARD)] == len(yard_left)
    assert values[("cv_recording_bytes", YARD)] == sum(s.bytes for s in yard_left)
    assert values[("cv_recording_deleted_segments_total", GATE_QUOTA)] == len(gate_deleted)
    assert values[("cv_recording_deleted_bytes_total", GATE_QUOTA)] == sum(
        s.bytes for s in gate_deleted
    )
    assert values[("cv_recording_deleted_segments_total", YARD_AGE)] == len(yard_deleted)
    assert values[("cv_recording_deleted_bytes_total", YARD_AGE)] == sum(
        s.bytes for s in yard_deleted
    )
    assert values[("cv_disk_free_bytes", ())] == 123_456_789_000
    assert values[("cv_disk_total_bytes", ())] == 500 * GB
    assert values[("cv_disk_min_free_bytes", ())] == GB
    assert values[("cv_disk_pressure", ())] == 0


def test_deletion_counters_add_up_over_runs(setup: Setup) -> None:
    first = setup.retention.run_once(NOW_TS)
    setup.free_bytes[0] = 100  # then the disk is nearly full: everything unlocked goes

    second = setup.retention.run_once(NOW_TS)
    values = setup.publish_and_scrape()

    yard_left = len(setup.yard) - first.segments("age")
    assert second.deleted_segments == {
        "gate": {"disk_pressure": 1},
        "yard": {"disk_pressure": yard_left},
    }
    assert values[("cv_disk_pressure", ())] == 1
    assert values[("cv_disk_free_bytes", ())] == 100
    # The first run's counts are still there, the second run's added beside them.
    assert values[("cv_recording_deleted_segments_total", GATE_QUOTA)] == len(setup.gate) - 1
    assert values[("cv_recording_deleted_segments_total", YARD_AGE)] == first.segments("age")
    pressure = (("camera", "gate"), ("reason", "disk_pressure"))
    assert values[("cv_recording_deleted_segments_total", pressure)] == 1
    assert values[("cv_recording_deleted_bytes_total", pressure)] == setup.newest_gate.bytes
    # A configured camera with nothing left on disk reads 0, not a missing series.
    assert values[("cv_recording_segments", GATE)] == 0
    assert values[("cv_recording_bytes", GATE)] == 0
    assert ("cv_recording_oldest_timestamp_seconds", GATE) not in values

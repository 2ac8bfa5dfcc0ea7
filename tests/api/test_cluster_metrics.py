"""``/metrics`` with several workers: each publishes its stages' stats under its own
``cv:stats`` field (``detector@a``), and the API labels their series with ``worker``
instead of showing whichever worker wrote last."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import ApiSettings, create_app
from core.bus import WORKER_ID_ENV, EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.reliability.bus_helpers import ValkeyProcess
from tests.reliability.service import free_port
from vision.detector.stats import DetectorStats

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture()
def bus_url(tmp_path: Path) -> Iterator[str]:
    # A Valkey of its own: the session's shared one holds other tests' stats.
    server = ValkeyProcess(free_port())
    server.start(tmp_path / "valkey")
    yield server.url
    server.kill()


def _detector(camera: str, detected: int) -> DetectorStats:
    stats = DetectorStats(max_batch=4, frames_detected=detected, batches=detected)
    stats.detected_per_camera = {camera: detected}
    return stats


def _publish(url: str, worker: str | None, stats: DetectorStats, mp: pytest.MonkeyPatch) -> None:
    if worker is None:
        mp.delenv(WORKER_ID_ENV, raising=False)
    else:
        mp.setenv(WORKER_ID_ENV, worker)  # what `commune-vision worker` sets for its stages
    bus = EventBus(url)
    bus.publish_stats("detector", stats.to_json_dict())
    bus.close()


def _scrape(url: str, tmp_path: Path) -> Samples:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(make_engine(db))
    settings = ApiSettings(database_url=db, redis_url=url, media_root=tmp_path)
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("cv_detector_frames_detected")
    }


def test_each_workers_detector_is_a_labelled_series(
    bus_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish(bus_url, "a", _detector("gate", 7), monkeypatch)
    _publish(bus_url, "b", _detector("market", 11), monkeypatch)
    got = _scrape(bus_url, tmp_path)
    assert got[("cv_detector_frames_detected_total", (("worker", "a"),))] == 7
    assert got[("cv_detector_frames_detected_total", (("worker", "b"),))] == 11
    by_camera = "cv_detector_frames_detected_by_camera_total"
    assert got[(by_camera, (("camera", "gate"), ("worker", "a")))] == 7
    assert got[(by_camera, (("camera", "market"), ("worker", "b")))] == 11


def test_one_box_stays_unlabelled(
    bus_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish(bus_url, None, _detector("gate", 5), monkeypatch)
    got = _scrape(bus_url, tmp_path)
    assert got[("cv_detector_frames_detected_total", ())] == 5
    assert got[("cv_detector_frames_detected_by_camera_total", (("camera", "gate"),))] == 5

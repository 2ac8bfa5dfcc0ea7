"""Rules through the running service: line crossings on the junction clip become
traffic counts served by the API, and a camera that never comes up raises a
camera_offline incident."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_service import Service, kill_service, start_service, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture()
def service(tmp_path: Path, video) -> Iterator[Service]:  # type: ignore[no-untyped-def]
    cameras = f"""
  - id: crossroads
    url: {video("intersection_cctv_day.mp4")}
    detect: {{fps: 10}}
    lines:
      - {{name: west-road, points: [[0.0625, 0.104], [0.0625, 0.271]]}}
      - {{name: north-crosswalk, points: [[0.516, 0.15], [0.969, 0.302]]}}
    rules:
      - {{type: line_crossing, name: west-count, line: west-road}}
      - {{type: line_crossing, name: north-count, line: north-crosswalk, incident: true}}
  - id: dead
    url: rtsp://127.0.0.1:9/nothing-listens-here
    rules:
      - {{type: camera_offline, name: dead-offline, after_s: 3}}
"""
    svc = start_service(tmp_path, cameras)
    yield svc
    kill_service(svc)


def test_crossings_become_counts_and_dead_camera_an_incident(service: Service) -> None:
    base = service.base

    def counts() -> list[dict[str, object]]:
        params: dict[str, str | float] = {
            "camera_id": "crossroads",
            "bucket": "1m",
            "since_ts": time.time() - 600,
        }
        rows: list[dict[str, object]] = httpx.get(
            f"{base}/api/stats/traffic", params=params, headers=service.headers
        ).json()
        return rows

    wait_for(
        lambda: sum(int(str(r["count"])) for r in counts()) >= 3, 60, "3 line crossings counted"
    )
    rows = counts()
    assert {r["line"] for r in rows} <= {"west-road", "north-crosswalk"}
    assert {r["direction"] for r in rows} <= {"in", "out"}
    assert all(
        r["label"] in {"car", "bus", "truck", "motorbike", "bicycle", "person"} for r in rows
    )

    def incidents(kind: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(
            f"{base}/api/incidents", params={"type": kind}, headers=service.headers
        ).json()["items"]
        return items

    wait_for(lambda: bool(incidents("camera_offline")), 30, "the camera_offline incident")
    offline = incidents("camera_offline")[0]
    assert offline["camera_id"] == "dead" and offline["severity"] == "high"
    assert httpx.get(f"{base}{offline['snapshot_url']}", headers=service.headers).status_code == 200
    if any(r["line"] == "north-crosswalk" for r in rows):
        crossing = incidents("line_crossing")
        assert crossing and crossing[0]["details"]["direction"] in ("in", "out")  # type: ignore[index]

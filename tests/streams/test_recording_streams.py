"""Recording wired into camera ingest, against real RTSP cameras on loopback: the
detect stream's own packets are recorded, or, with ``record_url``, the main stream
on its own connection while detection reads the substream.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from commune_vision.recording import RecorderFactory
from core.config import CameraConfig
from core.types import SegmentClosed
from streams.manager import CameraManager
from streams.reader import Backoff
from tests.rtsp.harness import Mount, RtspServer

FAST = Backoff(start_s=0.5, max_s=2.0, slow_s=60.0)


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _video_size(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(out.stdout)["streams"][0]
    return int(stream["width"]), int(stream["height"])


def _run(cameras: list[CameraConfig], root: Path, seconds_wanted: int) -> list[SegmentClosed]:
    recorders = RecorderFactory(root)
    frames: list[str] = []
    lock = threading.Lock()

    def publish(ref: object) -> bool:
        with lock:
            frames.append(getattr(ref, "camera_id", ""))
        return True

    manager = CameraManager(publish, packet_sinks=recorders.sinks_for, backoff=FAST)
    segments: list[SegmentClosed] = []
    events: list[tuple[str, dict[str, object]]] = []
    try:
        manager.apply(cameras)
        _wait(
            lambda: (
                recorders.drain(segments.append, lambda k, p: events.append((k, p))) >= 0
                and len(segments) >= seconds_wanted
            ),
            60,
            f"{seconds_wanted} segments",
        )
        health = manager.health()
    finally:
        manager.stop_all()
    recorders.drain(segments.append, lambda k, p: events.append((k, p)))
    for camera in cameras:
        assert health[camera.id]["recording"] == "recording", health
        assert int(health[camera.id]["segments_recorded"]) >= 1  # type: ignore[call-overload]
    assert not events, events
    assert frames, "detection still gets frames while recording"
    return segments


def test_record_url_records_the_main_stream_while_detection_reads_the_substream(
    tmp_path: Path, video: Callable[[str], Path]
) -> None:
    mounts = [
        Mount("/sub", video("pets2009_vtest_480x360.mp4")),
        Mount("/main", video("street_parking_ipcam_day.mp4")),  # 640x360, another camera
    ]
    with RtspServer().start(mounts) as server:
        camera = CameraConfig.model_validate(
            {
                "id": "gate",
                "url": server.url("/sub"),
                "record_url": server.url("/main"),
                "detect": {"fps": 2},
                "record": {"segment_s": 2},
            }
        )
        segments = _run([camera], tmp_path, 3)
    assert {s.camera_id for s in segments} == {"gate"}
    for seg in segments:
        # The recorded picture is the main stream's, not the detect substream's.
        assert _video_size(tmp_path / seg.path) == (640, 360)
    assert not list(tmp_path.rglob("*.part"))


def test_record_disabled_records_nothing_and_the_detect_stream_is_recorded_otherwise(
    tmp_path: Path, video: Callable[[str], Path]
) -> None:
    with RtspServer().start([Mount("/cam", video("pets2009_vtest_480x360.mp4"))]) as server:
        url = server.url("/cam")
        cameras = [
            CameraConfig.model_validate(
                {"id": "a", "url": url, "detect": {"fps": 2}, "record": {"segment_s": 2}}
            ),
            CameraConfig.model_validate(
                {"id": "b", "url": url, "detect": {"fps": 2}, "record": {"enabled": False}}
            ),
        ]
        recorders = RecorderFactory(tmp_path)
        manager = CameraManager(lambda _ref: True, packet_sinks=recorders.sinks_for, backoff=FAST)
        segments: list[SegmentClosed] = []
        try:
            manager.apply(cameras)
            _wait(
                lambda: (
                    recorders.drain(segments.append, lambda k, p: None) >= 0 and len(segments) >= 2
                ),
                60,
                "two segments of camera a",
            )
            health = manager.health()
        finally:
            manager.stop_all()
    assert {s.camera_id for s in segments} == {"a"}
    assert health["b"]["recording"] == "off"
    assert not (tmp_path / "b").exists()
    for seg in segments:
        assert _video_size(tmp_path / seg.path) == (480, 360)

"""Changes that do not touch the stream (zones, rules, thresholds) never reconnect it."""

from __future__ import annotations

import time

from core.config import CameraConfig
from core.frames import FrameReader
from core.types import CameraState, FrameRef
from streams.manager import CameraManager


def test_threshold_change_does_not_reconnect_the_camera(video) -> None:  # type: ignore[no-untyped-def]
    camera = CameraConfig.model_validate(
        {"id": "walk", "url": str(video("pets2009_vtest_480x360.mp4")), "detect": {"fps": 5}}
    )
    manager = CameraManager(lambda _ref: True)
    try:
        manager.apply([camera])
        deadline = time.monotonic() + 15
        while manager.states()["walk"] != CameraState.ONLINE and time.monotonic() < deadline:
            time.sleep(0.1)
        reader = manager.readers()[0]
        frames_before = reader.health.frames_decoded
        stricter = CameraConfig.model_validate(
            {**camera.model_dump(), "filters": {"person": {"min_confidence": 0.6}}}
        )
        assert manager.apply([stricter]) == ([], ["walk"], [])
        assert manager.readers()[0] is reader and reader.camera == stricter
        time.sleep(1.0)
        assert reader.health.reconnects == 0 and reader.health.frames_decoded > frames_before

        faster = CameraConfig.model_validate({**stricter.model_dump(), "detect": {"fps": 10}})
        manager.apply([faster])
        assert manager.readers()[0] is not reader  # a stream setting: reconnects
    finally:
        manager.stop_all()


def test_latest_frames_name_each_camera_newest_frame_in_its_ring(video) -> None:  # type: ignore[no-untyped-def]
    """What ingest publishes to ``cv:latest_frame`` for the live view."""
    camera = CameraConfig.model_validate(
        {"id": "walk", "url": str(video("pets2009_vtest_480x360.mp4")), "detect": {"fps": 5}}
    )
    manager = CameraManager(lambda _ref: True)
    frames = FrameReader()
    try:
        assert manager.latest_frames() == {}
        manager.apply([camera])
        deadline = time.monotonic() + 15
        while "walk" not in manager.latest_frames() and time.monotonic() < deadline:
            time.sleep(0.1)
        first: FrameRef = manager.latest_frames()["walk"]
        time.sleep(0.5)  # a few more frames at 5 fps
        got = frames.newest(first)
        assert got is not None
        newest, pixels = got
        assert newest.seq > first.seq and pixels.shape == (360, 480, 3)

        resized = CameraConfig.model_validate({**camera.model_dump(), "detect": {"width": 320}})
        manager.apply([resized])  # a stream setting: a new reader with a new ring
        assert frames.newest(first) is None  # the old ring, still mapped here, shows nothing
        manager.apply([])
        assert manager.latest_frames() == {}
    finally:
        manager.stop_all()
        frames.close()

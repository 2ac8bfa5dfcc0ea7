"""Changes that do not touch the stream (zones, rules, thresholds) never reconnect it."""

from __future__ import annotations

import time

from core.config import CameraConfig
from core.types import CameraState
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

"""Backpressure in the reader: a camera throttled to a lower admitted fps decodes every
frame, sends only the admitted ones on, and stays online with a fresh last frame."""

from __future__ import annotations

import time

from core.config import CameraConfig
from core.types import CameraState, FrameRef
from streams.manager import CameraManager


def test_throttled_camera_sends_its_admitted_fps_and_stays_online(video) -> None:  # type: ignore[no-untyped-def]
    camera = CameraConfig.model_validate(  # a 10 fps clip, played in real time
        {"id": "walk", "url": str(video("pets2009_vtest_480x360.mp4")), "detect": {"fps": 10}}
    )
    sent: list[FrameRef] = []

    def publish(ref: FrameRef) -> bool:
        sent.append(ref)
        return True

    manager = CameraManager(publish)
    try:
        manager.apply([camera])
        deadline = time.monotonic() + 15
        while manager.states()["walk"] != CameraState.ONLINE and time.monotonic() < deadline:
            time.sleep(0.1)
        reader = manager.readers()[0]
        assert manager.admission()["walk"].ceiling_fps == 10.0

        manager.set_admit_fps({"walk": 2.0})
        time.sleep(0.5)
        start, decoded = len(sent), reader.health.frames_decoded
        time.sleep(4.0)
        # 4 s at 2 fps (±1 for where the window cuts the schedule), while all 40
        # frames of those 4 s were decoded.
        assert 7 <= len(sent) - start <= 9
        assert reader.health.frames_decoded - decoded >= 36
        admission = manager.admission()["walk"]
        assert admission.frames_throttled >= 28
        assert admission.frames_admitted == reader.health.frames_delivered
        manager.watchdog()
        health = reader.health
        assert health.state == CameraState.ONLINE  # held-back frames are no stall
        assert time.time() - (health.last_frame_ts or 0.0) < 0.5
        assert 1.5 <= health.decoded_fps <= 2.5  # admitted, i.e. sent on
        assert health.input_fps >= 8.0  # decoded from the stream

        manager.set_admit_fps({})  # left out: not throttled, back to detect.fps
        time.sleep(0.5)
        start = len(sent)
        time.sleep(2.0)
        assert len(sent) - start >= 17
    finally:
        manager.stop_all()

"""Live preview through the real process graph: a clip played as a live camera,
ingest publishing its newest frame, the API reading ingest's shared memory."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.config import DetectSettings
from streams.reader import detect_size
from tests.conftest import VideoFinder
from tests.e2e.test_service import campus_camera, kill_service, start_service, wait_for
from tests.mjpeg import MjpegParts, boundary_of, decode

pytestmark = pytest.mark.e2e

CLIP_W, CLIP_H = 480, 360  # pets2009_vtest_480x360.mp4


def _live_streams(base: str) -> float:
    match = re.search(r"^cv_api_live_streams (\S+)$", httpx.get(f"{base}/metrics").text, re.M)
    assert match, "cv_api_live_streams is missing from /metrics"
    return float(match.group(1))


def test_snapshot_and_mjpeg_show_the_live_camera(tmp_path: Path, video: VideoFinder) -> None:
    service = start_service(tmp_path, campus_camera(video("pets2009_vtest_480x360.mp4")))
    try:
        base, headers = service.base, service.headers
        url = f"{base}/api/cameras/campus/snapshot.jpg"

        def get(params: dict[str, int] | None = None) -> httpx.Response:
            return httpx.get(url, headers=headers, params=params, timeout=10)

        wait_for(lambda: get().status_code == 200, 60, "a live snapshot")
        first = get()
        assert first.headers["content-type"] == "image/jpeg"
        assert first.headers["cache-control"] == "no-store"
        assert abs(float(first.headers["x-capture-ts"]) - time.time()) < 10  # live, not file time
        width, height = detect_size(CLIP_W, CLIP_H, DetectSettings().width, None)
        image = decode(first.content)
        assert image.shape == (height, width, 3)
        small = decode(get({"width": 240}).content)
        assert small.shape == (180, 240, 3)

        # People walk through the clip: a later snapshot is another frame.
        later: list[np.ndarray] = []

        def changed() -> bool:
            response = get()
            if response.headers["x-frame-seq"] == first.headers["x-frame-seq"]:
                return False
            later.append(decode(response.content))
            return True

        wait_for(changed, 15, "the snapshot to change")
        assert float(np.abs(later[-1].astype(np.int16) - image.astype(np.int16)).mean()) > 0.1

        live_url = f"{base}/api/cameras/campus/live.mjpeg"
        with httpx.stream("GET", live_url, params={"fps": 5}, headers=headers, timeout=20) as live:
            assert live.status_code == 200
            parts = MjpegParts(live.iter_raw(), boundary_of(live.headers["content-type"]))
            jpegs = [parts.next() for _ in range(3)]
        assert len(set(jpegs)) == 3  # only changed frames are sent
        assert all(decode(j).shape == (height, width, 3) for j in jpegs)
        wait_for(lambda: _live_streams(base) == 0, 10, "the server to end the MJPEG stream")

        for path in ("snapshot.jpg", "live.mjpeg"):
            unknown = httpx.get(f"{base}/api/cameras/nowhere/{path}", headers=headers)
            assert unknown.status_code == 404, unknown.text
        assert service.stop(signal.SIGINT) == 0
        assert "Traceback" not in service.log()
    finally:
        kill_service(service)

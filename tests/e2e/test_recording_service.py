"""Recording in the running service, from a real RTSP camera: the timeline has no
holes, and a ``kill -9`` of the recording process mid-segment breaks nothing.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from core.storage.db import make_engine
from core.storage.segments import Segment, SegmentIndex
from tests.e2e.test_service import Service, kill_service, start_service, wait_for
from tests.rtsp.harness import Mount, RtspServer

pytestmark = pytest.mark.e2e

SEGMENT_S = 6.0
RECORD_S = 60.0


@pytest.fixture()
def camera_server(video) -> Iterator[RtspServer]:  # type: ignore[no-untyped-def]
    # Key frames every ~2 s, like a typical IP camera's main stream.
    with RtspServer().start([Mount("/main", video("street_parking_ipcam_day.mp4"))]) as server:
        yield server


@pytest.fixture()
def service(tmp_path: Path, camera_server: RtspServer) -> Iterator[Service]:
    cameras = f"""
  - id: market
    url: {camera_server.url("/main")}
    detect: {{fps: 2}}
    record: {{segment_s: {SEGMENT_S}}}
"""
    svc = start_service(tmp_path, cameras)
    yield svc
    kill_service(svc)


def _index(tmp_path: Path) -> SegmentIndex:
    return SegmentIndex(make_engine(f"sqlite:///{tmp_path / 'data' / 'commune-vision.db'}"))


def _segments(index: SegmentIndex) -> list[Segment]:
    return index.overlapping("market", 0.0, time.time() + 3600)


def _ffprobe_duration_s(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and not out.stderr.strip(), f"{path}: {out.stderr}"
    return float(out.stdout)


def test_sixty_seconds_of_rtsp_recording_has_no_holes(service: Service, tmp_path: Path) -> None:
    index = _index(tmp_path)
    wait_for(lambda: bool(_segments(index)), 60, "the first segment indexed")
    first_start = _segments(index)[0].start_ts
    time.sleep(max(0.0, first_start + RECORD_S - time.time()))
    assert service.stop(signal.SIGINT) == 0, service.log()

    root = tmp_path / "data" / "recordings"
    segments = [s for s in _segments(index) if s.start_ts < first_start + RECORD_S]
    durations = [_ffprobe_duration_s(root / s.path) for s in segments]
    recorded_s = sum(durations)
    assert RECORD_S - SEGMENT_S <= recorded_s <= RECORD_S + SEGMENT_S, (durations, service.log())
    for seg, probed_s in zip(segments, durations, strict=True):
        # The index agrees with the file, to a frame or two.
        assert abs(seg.duration_s - probed_s) < 0.2, (seg, probed_s)
        assert seg.duration_s <= SEGMENT_S + 2.5  # cut on the first key frame after 6 s
    gaps = [b.start_ts - a.end_ts for a, b in itertools.pairwise(segments)]
    assert max(gaps) < SEGMENT_S, gaps
    assert all(abs(g) < 0.5 for g in gaps), f"segments should abut: {gaps}"
    assert not list(root.rglob("*.part")), "a clean stop leaves no unfinished file"
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    assert on_disk == index.paths("market")


def _ingest(service: Service) -> psutil.Process | None:
    found = [p for p in service.descendants() if p.name() == "cv-ingest"]
    return found[0] if found else None


def test_kill_9_mid_segment_leaves_every_indexed_segment_playable(
    service: Service, tmp_path: Path
) -> None:
    index = _index(tmp_path)
    root = tmp_path / "data" / "recordings"
    wait_for(lambda: len(_segments(index)) >= 2, 60, "two segments indexed")
    wait_for(lambda: bool(list(root.rglob("*.part"))), 20, "a segment being written")
    time.sleep(2.0)  # well inside the segment
    victim = _ingest(service)
    assert victim is not None
    part = next(root.rglob("*.part"))
    before = {s.path for s in _segments(index)}
    victim.kill()
    victim.wait(10)

    def restarted() -> bool:
        new = _ingest(service)
        return new is not None and new.pid != victim.pid

    wait_for(restarted, 30, "the supervisor to restart cv-ingest")
    wait_for(
        lambda: len({s.path for s in _segments(index)} - before) >= 2,
        60,
        "two new segments after the restart",
    )
    assert service.stop(signal.SIGINT) == 0, service.log()

    assert not part.exists(), "the unfinished segment of the killed process is removed"
    segments = _segments(index)
    assert before <= {s.path for s in segments}, "nothing indexed before the crash is lost"
    for seg in segments:
        assert _ffprobe_duration_s(root / seg.path) > 0.5
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    assert on_disk == {s.path for s in segments}, "index and disk agree"
    assert not list(root.rglob("*.part"))

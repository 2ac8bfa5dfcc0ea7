"""The RTSP harness serves real, loopable, breakable cameras that PyAV can read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.logging
import pytest

from tests.conftest import VideoFinder
from tests.rtsp.harness import (
    HangingServer,
    Mount,
    RtspServer,
    cut_clip,
    make_corrupted_clip,
    require_gstreamer,
)

TCP = {"rtsp_transport": "tcp"}
PETS = "pets2009_vtest_480x360.mp4"  # 10 fps, B-frames, key frames every 8 s
SHORT_S = 3.0  # the short clip: one GOP, loops every ~3.1 s


@pytest.fixture(scope="module", autouse=True)
def _gstreamer() -> None:
    # Fails (never skips) with the apt-get line when GStreamer pieces are missing.
    require_gstreamer()


@pytest.fixture
def servers() -> Iterator[Callable[[list[Mount]], RtspServer]]:
    started: list[RtspServer] = []

    def start(mounts: list[Mount]) -> RtspServer:
        server = RtspServer()
        started.append(server)
        return server.start(mounts)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def short_clip(video: VideoFinder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut_clip(video(PETS), tmp_path_factory.mktemp("clips") / "short.mp4", SHORT_S)


@dataclass
class Reading:
    arrivals: list[float] = field(default_factory=list)  # monotonic seconds
    pts: list[float] = field(default_factory=list)  # frame time, seconds
    decode_errors: list[str] = field(default_factory=list)
    ended: str = ""  # how the read stopped: "limit", "eof" or the exception's type


def read(url: str, frames: int, seconds: float, opened: threading.Event | None = None) -> Reading:
    """Demux + decode ``url`` over RTSP/TCP until ``frames`` frames or ``seconds`` elapse."""
    out = Reading()
    deadline = time.monotonic() + seconds
    with av.open(url, options=TCP, timeout=(5, 5)) as container:
        if opened is not None:
            opened.set()
        try:
            for packet in container.demux(video=0):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    out.decode_errors.append(type(exc).__name__)
                    continue
                for frame in decoded:
                    out.arrivals.append(time.monotonic())
                    if frame.time is not None:
                        out.pts.append(frame.time)
                if len(out.arrivals) >= frames or time.monotonic() > deadline:
                    out.ended = "limit"
                    return out
            out.ended = "eof"
        except av.error.FFmpegError as exc:
            out.ended = type(exc).__name__
    return out


def real_time_fps(reading: Reading, last: int) -> float:
    """Arrival rate over the ``last`` frames (the first ones arrive in a burst while
    av.open probes the stream)."""
    times = reading.arrivals[-last:]
    return (len(times) - 1) / (times[-1] - times[0])


def test_streams_in_real_time(servers: Callable[..., RtspServer], video: VideoFinder) -> None:
    clip = "intersection_cctv_day.mp4"  # 30 fps, 640x480
    cams = servers([Mount("/cam01", video(clip))])
    reading = read(cams.url("/cam01"), frames=75, seconds=15)
    assert len(reading.arrivals) == 75, (reading, cams.stderr())
    fps = real_time_fps(reading, last=45)
    assert 30 * 0.85 < fps < 30 * 1.15, f"{fps:.1f} fps over RTSP for a 30 fps clip"
    steps = [b - a for a, b in zip(reading.pts, reading.pts[1:], strict=False)]
    assert all(abs(step - 1 / 30) < 0.002 for step in steps), steps


def test_short_clip_loops_with_increasing_timestamps_for_shared_clients(
    servers: Callable[..., RtspServer], short_clip: Path
) -> None:
    cams = servers([Mount("/loop", short_clip)])
    first_opened = threading.Event()
    results: dict[str, Reading] = {}

    def first() -> None:
        results["first"] = read(cams.url("/loop"), frames=10_000, seconds=7.5, opened=first_opened)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_opened.wait(10)
    time.sleep(1.0)
    # A second client joins the same (shared) mount: it must not rewind the first one.
    joined = read(cams.url("/loop"), frames=10, seconds=6)
    thread.join(20)
    looped = results["first"]

    assert looped.ended == "limit", looped
    assert looped.pts[-1] > 2 * SHORT_S, f"stream stopped at {looped.pts[-1]} s"
    assert all(b > a for a, b in zip(looped.pts, looped.pts[1:], strict=False)), looped.pts
    assert 8.5 < real_time_fps(looped, last=40) < 11.5
    assert len(joined.arrivals) == 10, joined
    assert joined.pts[0] > 1.0, "the joining client should get the live stream, not a rewind"


def test_basic_auth(servers: Callable[..., RtspServer], short_clip: Path) -> None:
    cams = servers([Mount("/cam07", short_clip, user="admin", password="s3cr:t@")])
    for user, password in (("admin", "wrong"), (None, None)):
        with pytest.raises(av.error.HTTPUnauthorizedError):
            av.open(cams.url("/cam07", user, password), options=TCP, timeout=(5, 5))
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(cams.url("/nope"), options=TCP, timeout=(5, 5))
    reading = read(cams.url("/cam07", "admin", "s3cr:t@"), frames=5, seconds=10)
    assert len(reading.arrivals) == 5
    cams.stop()
    assert cams.returncode == 0, "SIGTERM should stop the server cleanly"


def test_killed_camera_ends_stream_and_restart_serves_again(
    servers: Callable[..., RtspServer], short_clip: Path
) -> None:
    victim = servers([Mount("/victim", short_clip)])
    survivor = servers([Mount("/survivor", short_clip)])  # own process: survives the kill
    port = victim.port
    opened = threading.Event()
    results: dict[str, Reading] = {}

    def watch(name: str, server: RtspServer, ev: threading.Event | None) -> None:
        results[name] = read(server.url(f"/{name}"), frames=10_000, seconds=6, opened=ev)

    threads = [
        threading.Thread(target=watch, args=("victim", victim, opened)),
        threading.Thread(target=watch, args=("survivor", survivor, None)),
    ]
    for thread in threads:
        thread.start()
    assert opened.wait(10)
    time.sleep(1.0)
    killed_at = time.monotonic()
    victim.kill()
    for thread in threads:
        thread.join(20)

    dead = results["victim"]
    # PyAV raises nothing: the TCP connection closes and demux() simply ends (EOF).
    assert dead.ended == "eof", dead
    assert dead.arrivals[-1] < killed_at + 0.5
    assert results["survivor"].ended == "limit"
    after_kill = [t for t in results["survivor"].arrivals if t > killed_at + 0.5]
    assert len(after_kill) >= 15, "the other server's camera should keep streaming"

    with pytest.raises(ConnectionRefusedError):
        av.open(victim.url("/victim"), options=TCP, timeout=(5, 5))
    victim.restart()
    assert victim.port == port
    assert len(read(victim.url("/victim"), frames=5, seconds=10).arrivals) == 5


def test_hanging_camera_times_out() -> None:
    with HangingServer() as hung:
        started = time.monotonic()
        # ffmpeg reports the interrupted RTSP handshake as "Invalid data".
        with pytest.raises(av.error.InvalidDataError):
            av.open(hung.url, options=TCP, timeout=(3, 3))
        assert time.monotonic() - started < 6
        assert hung.accepted == 1


def test_corrupted_stream_plays_through_garbage(
    servers: Callable[..., RtspServer], short_clip: Path, tmp_path: Path
) -> None:
    bad = make_corrupted_clip(short_clip, tmp_path / "bad.mp4", start=0.3, end=0.6)
    cams = servers([Mount("/bad", bad)])
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            reading = read(cams.url("/bad"), frames=45, seconds=12)
    finally:
        av.logging.set_level(previous)
    h264_errors = [msg for level, name, msg in logs if name == "h264" and level <= av.logging.ERROR]
    # Decoding garbage logs errors (and conceals) but raises nothing; frames keep coming.
    assert len(reading.arrivals) == 45, reading
    assert h264_errors, "the corrupted mount should make the decoder complain"

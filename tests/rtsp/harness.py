"""Loopback RTSP cameras for tests: real ones, broken ones, hanging ones.

- ``RtspServer`` runs ``gst_server.py`` (GStreamer's RTSP server) under Debian's
  ``/usr/bin/python3`` in its own process group. Each mount plays a clip in real time
  and loops forever, video only, optionally behind basic auth. ``kill()`` is a power
  cut (SIGKILL), ``restart()`` brings the same mounts back on the same port.
  A server is one process: to kill one camera while others keep running, give the
  victim its own ``RtspServer``.
- ``HangingServer`` accepts TCP connections and never answers.
- ``make_corrupted_clip`` writes a copy of a clip with garbage in the middle of its
  video data, to serve as a mount.

Usage::

    with RtspServer().start([Mount("/cam07", clip)]) as cams:
        container = av.open(cams.url("/cam07"), options={"rtsp_transport": "tcp"})
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

import av

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("gst_server.py")
APT_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)
# Elements gst_server.py builds (filesrc: core; qtdemux, rtph264pay: good; h264parse: bad).
_ELEMENTS = ("filesrc", "qtdemux", "h264parse", "rtph264pay")
_CHECK = f"""
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in {_ELEMENTS!r} if Gst.ElementFactory.find(e) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + ", ".join(missing))
"""


class GStreamerMissingError(RuntimeError):
    """The system Python or GStreamer lacks what the RTSP test server needs."""


class ServerStartError(RuntimeError):
    """gst_server.py did not become ready."""


@cache
def require_gstreamer() -> None:
    """Raise ``GStreamerMissingError`` naming the apt packages when something is missing."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        reason = f"{SYSTEM_PYTHON} not found"
    else:
        run = subprocess.run(
            [SYSTEM_PYTHON, "-c", _CHECK], check=False, capture_output=True, text=True, timeout=60
        )
        if run.returncode == 0:
            return
        reason = (run.stderr.strip().splitlines() or ["unknown error"])[-1]
    raise GStreamerMissingError(
        f"the RTSP test server needs GStreamer's RTSP server for {SYSTEM_PYTHON} ({reason}); "
        f"install it with: sudo apt-get install -y {APT_PACKAGES} "
        "(or run scripts/install-system-deps.sh)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Mount:
    """One camera: ``path`` like ``/cam07``; ``user`` set means basic auth is required."""

    path: str
    clip: Path
    user: str | None = None
    password: str | None = None

    def to_json(self) -> dict[str, str]:
        spec = {"path": self.path, "clip": str(Path(self.clip).resolve())}
        if self.user is not None:
            spec |= {"user": self.user, "password": self.password or ""}
        return spec


class RtspServer:
    """gst_server.py as a child process serving ``mounts`` on 127.0.0.1."""

    def __init__(self, ready_timeout: float = 20.0) -> None:
        self.ready_timeout = ready_timeout
        self.mounts: tuple[Mount, ...] = ()
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def start(self, mounts: Iterable[Mount], port: int | None = None) -> Self:
        """Start serving; ``port=None`` lets the server pick a free one."""
        if self.running:
            raise RuntimeError("server already running")
        self.mounts = tuple(mounts)
        paths = [m.path for m in self.mounts]
        if not paths or len(set(paths)) != len(paths) or not all(p.startswith("/") for p in paths):
            raise ValueError(f"need unique mount paths starting with '/': {paths}")
        require_gstreamer()
        self._launch(port if port is not None else 0)
        return self

    def restart(self) -> Self:
        """Power back on after ``kill()`` (or a hard restart): same port, same mounts."""
        if self.port is None:
            raise RuntimeError("server was never started")
        if self.running:
            self.kill()
        self._launch(self.port)
        return self

    def url(self, mount: str, user: str | None = None, password: str | None = None) -> str:
        if self.port is None:
            raise RuntimeError("server was never started")
        path = mount if mount.startswith("/") else f"/{mount}"
        auth = ""
        if user is not None:
            auth = quote(user, safe="") + (
                f":{quote(password, safe='')}" if password is not None else ""
            )
            auth += "@"
        return f"rtsp://{auth}127.0.0.1:{self.port}{path}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once stopped (0 after a clean SIGTERM stop, -9 after kill())."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far (GStreamer warnings included)."""
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole server, as when a camera loses power. Clients see it at once."""
        if self._proc is not None:
            _signal(self._proc, signal.SIGKILL)
            _reap(self._proc)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL after 5 s. Safe to call twice."""
        if self._proc is not None:
            _signal(self._proc, signal.SIGTERM)
            try:
                _reap(self._proc)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, port: int) -> None:
        if self._log is None:
            fd, name = tempfile.mkstemp(prefix="gst_server_", suffix=".log")
            os.close(fd)
            self._log = Path(name)
        spec = json.dumps({"mounts": [m.to_json() for m in self.mounts]})
        args = ["--port", str(port), "--spec", spec, "--parent-pid", str(os.getpid())]
        with self._log.open("ab") as log:
            self._proc = proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER_SCRIPT), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # own process group: kill() takes it all down
            )
        assert proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        line = b""
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.1)[0]:
                line = proc.stdout.readline()
                if line.startswith(b"READY port="):
                    self.port = int(line.split(b"=", 1)[1])
                    return
                if not line:  # stdout closed: the process is exiting
                    proc.wait(timeout=5)
        status = "timed out" if proc.poll() is None else f"exited with {proc.returncode}"
        self.kill()
        stderr = self.stderr()
        self.stop()  # removes the log
        raise ServerStartError(f"gst_server.py {status} before READY on port {port}:\n{stderr}")


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)


def _reap(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    proc.wait(timeout=timeout)
    if proc.stdout is not None:
        proc.stdout.close()


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte: a hung camera."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}/x"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed by stop()
                return
            self._conns.append(conn)
            self.accepted += 1

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._sock.close()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def cut_clip(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``src``, video only, stream copy (no re-encode)."""
    args = ["-y", "-i", str(src), "-t", str(seconds), "-map", "0:v:0", "-c", "copy", str(dst)]
    subprocess.run(["ffmpeg", "-v", "error", *args], check=True)
    return dst


def make_corrupted_clip(
    src: Path, dst: Path, start: float = 0.4, end: float = 0.6, seed: int = 0
) -> Path:
    """Copy ``src`` to ``dst`` with garbage in the slices of the video packets between
    fractions ``start`` and ``end`` of the clip (in decode order).

    The container, packet sizes and NAL framing stay intact, so the clip demuxes and
    plays: clean, then corrupt pictures (decoder errors and concealment) until the next
    key frame after the window, then clean again. Like bit errors on a bad link.
    """
    data = bytearray(Path(src).read_bytes())
    rng = random.Random(seed)
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise ValueError(f"{src}: only H.264 is supported, got {stream.codec_context.name}")
        extradata = stream.codec_context.extradata or b""
        if not extradata or extradata[0] != 1:
            raise ValueError(f"{src}: expected length-prefixed H.264 (avcC) samples")
        nal_len = (extradata[4] & 3) + 1
        packets = [(p.pos, p.size) for p in container.demux(stream) if p.size and p.pos]
    first, last = int(len(packets) * start), int(len(packets) * end)
    corrupted = 0
    for pos, size in packets[first:last]:
        offset = pos
        while offset + nal_len < pos + size:
            length = int.from_bytes(data[offset : offset + nal_len], "big")
            body = offset + nal_len
            if length == 0 or body + length > pos + size:
                raise ValueError(f"{src}: unexpected sample layout at byte {offset}")
            if data[body] & 0x1F in (1, 5) and length > 32:  # coded slice (non-IDR / IDR)
                # Keep the NAL header and the start of the slice header, trash the rest.
                lo, hi = body + 16, body + length
                data[lo:hi] = rng.randbytes(hi - lo)
                corrupted += 1
            offset = body + length
    if not corrupted:
        raise ValueError(f"{src}: no slice found to corrupt between {start} and {end}")
    Path(dst).write_bytes(data)
    return Path(dst)

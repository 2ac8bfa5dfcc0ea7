"""Turn a failed open or read into a camera state, a message a person can act
on, and how long to wait before trying again.

Wrong passwords, unknown hosts and missing paths are not cured by retrying
every second; they wait ``slow_retry_s`` so a misconfigured camera does not
hammer its device (a retry storm can lock an account on many NVRs).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import av.error

from core.redact import redact_url
from core.types import CameraState


@dataclass(frozen=True, slots=True)
class Failure:
    state: CameraState
    message: str
    slow_retry: bool  # a configuration problem: retry rarely


def _host_resolves(url: str) -> bool:
    host = urlsplit(url).hostname
    if not host:
        return True
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return True


_NO_DATA = (
    av.error.ExitError,
    av.error.TimeoutError,
    av.error.InvalidDataError,
    av.error.EOFError,
    TimeoutError,
)


def classify(exc: BaseException, url: str, was_online: bool, timed_out: bool = False) -> Failure:
    """``was_online``: the session had delivered frames before it failed.
    ``timed_out``: the attempt lasted about as long as the open/read timeout
    (FFmpeg reports an interrupted RTSP handshake as invalid data).
    """
    text = redact_url(str(exc)) or type(exc).__name__
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return Failure(
            CameraState.AUTH_FAILED,
            "the camera rejected the user name or password; fix the credentials in the camera URL",
            slow_retry=True,
        )
    if isinstance(exc, av.error.FileNotFoundError | av.error.HTTPNotFoundError):
        return Failure(
            CameraState.NOT_FOUND,
            f"stream path not found ({text}); check the path part of the camera URL",
            slow_retry=True,
        )
    if isinstance(exc, av.error.ExitError | TimeoutError | av.error.TimeoutError) or (
        timed_out and isinstance(exc, _NO_DATA)
    ):
        # Our timeout fired: the camera accepted the connection but sent nothing.
        return Failure(
            CameraState.STALLED,
            "no data from the camera within the timeout (stalled stream)",
            slow_retry=False,
        )
    if isinstance(exc, av.error.ConnectionRefusedError | ConnectionRefusedError):
        return Failure(CameraState.OFFLINE, "connection refused (camera down?)", slow_retry=False)
    if isinstance(exc, av.error.EOFError | EOFError) and was_online:
        return Failure(CameraState.OFFLINE, "the stream ended (camera closed it)", slow_retry=False)
    if isinstance(exc, av.error.OSError | OSError) and not _host_resolves(url):
        host = urlsplit(url).hostname
        return Failure(
            CameraState.ERROR,
            f"cannot resolve host {host!r}; check the camera address and DNS",
            slow_retry=True,
        )
    if isinstance(exc, av.error.InvalidDataError):
        return Failure(CameraState.ERROR, f"invalid stream data: {text}", slow_retry=False)
    if isinstance(exc, av.error.FFmpegError | OSError):
        return Failure(CameraState.OFFLINE, text, slow_retry=False)
    return Failure(CameraState.ERROR, f"{type(exc).__name__}: {text}", slow_retry=False)

"""Reading ``multipart/x-mixed-replace`` (MJPEG) bodies the way a browser does:
boundary line, part headers, ``Content-Length`` bytes of JPEG, CRLF."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np


class MjpegParts:
    """JPEG payloads from a stream of body chunks, in order."""

    def __init__(self, chunks: Iterator[bytes], boundary: str) -> None:
        self._chunks = chunks
        self._marker = f"--{boundary}\r\n".encode()
        self._buf = b""

    def _fill(self, size: int) -> None:
        while len(self._buf) < size:
            self._buf += next(self._chunks)  # StopIteration: the stream ended early

    def next(self) -> bytes:
        self._fill(len(self._marker))
        assert self._buf.startswith(self._marker), self._buf[:80]
        while b"\r\n\r\n" not in self._buf:
            self._fill(len(self._buf) + 1)
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        headers = dict(
            line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
        )
        assert headers["Content-Type"] == "image/jpeg", headers
        length = int(headers["Content-Length"])
        self._fill(length + 2)
        jpeg, tail, self._buf = (
            self._buf[:length],
            self._buf[length : length + 2],
            self._buf[length + 2 :],
        )
        assert tail == b"\r\n", tail
        return jpeg


def boundary_of(content_type: str) -> str:
    assert content_type.startswith("multipart/x-mixed-replace"), content_type
    return content_type.split("boundary=", 1)[1].strip()


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG OpenCV can decode"
    decoded: np.ndarray = image
    return decoded

"""The annotated snapshot an officer sees first: the zone, the box, label and time."""

from __future__ import annotations

import time

import cv2
import numpy as np
import numpy.typing as npt

_ZONE_BGR = (0, 200, 255)
_BOX_BGR = (0, 0, 255)


def annotate_snapshot(
    frame_bgr: npt.NDArray[np.uint8],
    geometry_px: npt.NDArray[np.int32] | None,
    closed: bool,
    xyxy: tuple[float, float, float, float] | None,
    caption: str,
    capture_ts: float,
    jpeg_quality: int = 85,
) -> bytes:
    """Draw the zone (``closed``) or line, the box and a caption on a copy; JPEG bytes."""
    image = frame_bgr.copy()
    if geometry_px is not None and closed and len(geometry_px) >= 3:
        overlay = image.copy()
        cv2.fillPoly(overlay, [geometry_px], _ZONE_BGR)
        cv2.addWeighted(overlay, 0.2, image, 0.8, 0, dst=image)
        cv2.polylines(image, [geometry_px], True, _ZONE_BGR, 2)
    elif geometry_px is not None and len(geometry_px) >= 2:
        cv2.polylines(image, [geometry_px], False, _ZONE_BGR, 3)
    x1, y1 = 6, 20
    if xyxy is not None:
        x1, y1, x2, y2 = (round(v) for v in xyxy)
        cv2.rectangle(image, (x1, y1), (x2, y2), _BOX_BGR, 2)
    cv2.putText(
        image,
        caption,
        (x1, max(14, y1 - 6)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        _BOX_BGR,
        1,
        cv2.LINE_AA,
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(capture_ts))
    cv2.putText(
        image,
        stamp,
        (6, image.shape[0] - 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError("JPEG encoding of the snapshot failed")
    return bytes(buf.tobytes())

"""Motion detection on a small grey image: is anything moving, and where.

Pure and cheap by design: the decoder hands over the Y (luma) plane, which is
free, this shrinks it to ``width_px`` wide and compares it with a running
average background (frame differencing with a slowly adapting reference, as
Frigate's motion detector does).  At 160×90 a frame costs well under 0.1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclass(frozen=True, slots=True)
class MotionResult:
    motion: bool
    fraction: float  # share of the image that changed
    regions: list[Box] = field(default_factory=list)


class MotionDetector:
    def __init__(
        self,
        width_px: int = 160,
        threshold: int = 25,
        min_area: float = 0.001,
        alpha: float = 0.05,
        lighting_change: float = 0.6,
    ) -> None:
        """``threshold``: grey-level change that counts; ``min_area``: smallest moving
        region as a share of the image; ``alpha``: how fast the background adapts;
        ``lighting_change``: above this share the whole scene changed (lights,
        auto-exposure), so the background is reset instead of reporting motion forever.
        """
        self.width_px = width_px
        self.threshold = threshold
        self.min_area = min_area
        self.alpha = alpha
        self.lighting_change = lighting_change
        self._background: npt.NDArray[np.float32] | None = None
        self._kernel = np.ones((3, 3), np.uint8)

    def update(self, grey: npt.NDArray[np.uint8]) -> MotionResult:
        h, w = grey.shape[:2]
        small_h = max(2, round(h * self.width_px / w))
        small = cv2.resize(grey, (self.width_px, small_h), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        if self._background is None or self._background.shape != small.shape:
            self._background = small.astype(np.float32)
            return MotionResult(True, 1.0, [(0.0, 0.0, 1.0, 1.0)])  # unknown scene: look
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self._background))
        _, mask = cv2.threshold(diff, self.threshold, 255, cv2.THRESH_BINARY)
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        fraction = float(np.count_nonzero(mask)) / mask.size
        if fraction > self.lighting_change:
            self._background = small.astype(np.float32)
            return MotionResult(True, fraction, [(0.0, 0.0, 1.0, 1.0)])
        cv2.accumulateWeighted(small, self._background, self.alpha)
        if fraction < self.min_area:
            return MotionResult(False, fraction)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = self.min_area * mask.size
        sh, sw = mask.shape
        regions = []
        for contour in contours:
            if cv2.contourArea(contour) < min_px:
                continue
            x, y, bw, bh = cv2.boundingRect(contour)
            regions.append((x / sw, y / sh, (x + bw) / sw, (y + bh) / sh))
        return MotionResult(bool(regions), fraction, regions)

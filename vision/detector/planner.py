"""When to pack frames into mosaic inputs: full size while the model keeps up.

``detector.mosaic: auto`` trades resolution for frame rate only under overload.
From the frames arriving per second (λ) and the measured seconds per network
input (c), the model is busy u = λ·c.  While u ≤ 1 (with headroom) every frame
gets an input of its own.  Beyond, a fraction f of the frames keeps full size and
the rest share mosaic inputs of T frames, with f chosen so that the inputs per
second fit: λ·(f + (1 − f)/T)·c = 1, i.e. f = (T/u − 1)/(T − 1).
Ingest's backpressure (streams/backpressure.py) then sees no drops and lets
cameras rise back towards detect.fps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

MosaicMode = Literal["off", "auto", "always"]

HEADROOM = 0.85  # pack once the model is busy 85 % of the time: queues stay short
RATE_WINDOW_S = 1.0
COST_SMOOTHING = 0.2  # weight of the newest batch in the seconds-per-input average


class MosaicPlanner:
    def __init__(
        self,
        mode: MosaicMode,
        frames_per_mosaic: int,
        max_inputs: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode: MosaicMode = mode if frames_per_mosaic > 1 else "off"
        self.frames_per_mosaic = frames_per_mosaic
        self.max_inputs = max_inputs
        self._clock = clock
        self._window_start = clock()
        self._window_frames = 0
        self.arrivals_per_s = 0.0
        self.seconds_per_input = 0.0
        self.full_fraction = 1.0

    def arrived(self, frames: int = 1) -> None:
        self._window_frames += frames
        now = self._clock()
        if now - self._window_start >= RATE_WINDOW_S:
            self.arrivals_per_s = self._window_frames / (now - self._window_start)
            self._window_start, self._window_frames = now, 0
            self._update_fraction()

    def batch_done(self, inputs: int, seconds: float) -> None:
        if inputs <= 0:
            return
        cost = seconds / inputs
        if self.seconds_per_input == 0.0:
            self.seconds_per_input = cost
        else:
            self.seconds_per_input += COST_SMOOTHING * (cost - self.seconds_per_input)

    def _update_fraction(self) -> None:
        if self.mode == "off":
            return  # full size always; also a 1 × 1 grid, where T − 1 = 0
        busy = self.arrivals_per_s * self.seconds_per_input / HEADROOM
        tiles = self.frames_per_mosaic
        if busy <= 1.0:
            self.full_fraction = 1.0
        else:
            self.full_fraction = max(0.0, (tiles / busy - 1.0) / (tiles - 1))  # < 1 here

    def batch_limit(self) -> int:
        """How many frames the next batch may take."""
        if self.mode == "off" or (self.mode == "auto" and self.full_fraction >= 1.0):
            return self.max_inputs
        return self.max_inputs * self.frames_per_mosaic

    def full_frames(self, frames: int) -> int:
        """Of a batch of ``frames``, how many get an input of their own (the first ones)."""
        if self.mode == "off":
            return frames
        tiles = self.frames_per_mosaic
        full = 0 if self.mode == "always" else min(frames, round(self.full_fraction * frames))
        # Fit the batch in max_inputs inputs: each full frame costs one input,
        # the others one per ``tiles``.
        while full > 0 and full + math.ceil((frames - full) / tiles) > self.max_inputs:
            full -= 1
        return full

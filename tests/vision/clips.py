"""Helpers the vision tests share: frames from the shared clips, a clock they set."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt


def clip_frames(
    path: Path, count: int, step: int = 1, start: int = 0
) -> list[npt.NDArray[np.uint8]]:
    """``count`` BGR frames of a clip: frame ``start``, then every ``step``-th."""
    out: list[npt.NDArray[np.uint8]] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start and (index - start) % step == 0:
                out.append(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
                if len(out) == count:
                    return out
    raise AssertionError(f"{path} has fewer than {start + (count - 1) * step + 1} frames")


class ManualClock:
    """A monotonic clock the test moves by hand (``clock.now += 0.3``)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

"""One struct-of-arrays for detections, used by every stage after the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Detections:
    """N detections in pixel coordinates of the frame they came from.

    ``tracker_id`` is -1 for detections no tracker has confirmed.
    """

    xyxy: FloatArray  # (N, 4) x1, y1, x2, y2
    confidence: FloatArray  # (N,)
    class_id: IntArray  # (N,) COCO class index
    tracker_id: IntArray  # (N,)

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must be (N, 4), got {self.xyxy.shape}")
        for name in ("confidence", "class_id", "tracker_id"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {getattr(self, name).shape}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int32),
            tracker_id=np.zeros((0,), np.int32),
        )

    @classmethod
    def untracked(cls, xyxy: FloatArray, confidence: FloatArray, class_id: IntArray) -> Detections:
        return cls(xyxy, confidence, class_id, np.full((len(xyxy),), -1, np.int32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Detections:
        return Detections(
            self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.tracker_id[mask]
        )

    def anchors_bottom_center(self) -> FloatArray:
        """(N, 2) the point where a person or vehicle touches the ground."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) * 0.5
        return np.stack([x, self.xyxy[:, 3]], axis=1).astype(np.float32)

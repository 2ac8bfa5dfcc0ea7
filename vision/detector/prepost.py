"""Letterbox in, decode of the YOLO [B, 4 + classes, N] output and NMS out."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vision.detections import Detections

PAD_VALUE = 114  # Ultralytics' letterbox grey, so scores match its own pipeline


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was placed into the network input: scale, then offset."""

    scale: float
    pad_x: float
    pad_y: float
    src_hw: tuple[int, int]


def letterbox_into(image_bgr: npt.NDArray[np.uint8], dst_bgr: npt.NDArray[np.uint8]) -> Letterbox:
    """Resize ``image_bgr`` keeping its aspect ratio and centre it in ``dst_bgr``.

    Writes straight into the batch buffer, so no intermediate image is allocated
    beyond cv2's resize output.
    """
    dst_h, dst_w = dst_bgr.shape[:2]
    src_h, src_w = image_bgr.shape[:2]
    scale = min(dst_h / src_h, dst_w / src_w)
    new_w, new_h = round(src_w * scale), round(src_h * scale)
    pad_x = (dst_w - new_w) // 2
    pad_y = (dst_h - new_h) // 2
    # Paint only the borders: the image area is overwritten anyway.
    dst_bgr[:pad_y] = PAD_VALUE
    dst_bgr[pad_y + new_h :] = PAD_VALUE
    dst_bgr[pad_y : pad_y + new_h, :pad_x] = PAD_VALUE
    dst_bgr[pad_y : pad_y + new_h, pad_x + new_w :] = PAD_VALUE
    target = dst_bgr[pad_y : pad_y + new_h, pad_x : pad_x + new_w]
    if (new_w, new_h) == (src_w, src_h):
        target[...] = image_bgr
    else:
        cv2.resize(image_bgr, (new_w, new_h), dst=target, interpolation=cv2.INTER_LINEAR)
    return Letterbox(scale=scale, pad_x=float(pad_x), pad_y=float(pad_y), src_hw=(src_h, src_w))


@dataclass(frozen=True, slots=True)
class RawBoxes:
    """Boxes after NMS, still in network pixels of one input image."""

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]

    @classmethod
    def empty(cls) -> RawBoxes:
        return cls(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int32))

    def take(self, index: npt.NDArray[np.intp]) -> RawBoxes:
        return RawBoxes(self.xyxy[index], self.confidence[index], self.class_id[index])


def raw_boxes(
    output: npt.NDArray[np.float32],
    confidence_threshold: float,
    iou_threshold: float,
    max_detections: int = 300,
) -> RawBoxes:
    """Decode one image's [4 + classes, N] output and run per-class NMS."""
    class_scores = output[4:]
    best = class_scores.max(axis=0)
    keep = np.flatnonzero(best >= confidence_threshold)
    if keep.size == 0:
        return RawBoxes.empty()
    confidence = best[keep].astype(np.float32)
    class_id = class_scores[:, keep].argmax(axis=0).astype(np.int32)
    cx, cy, w, h = output[0, keep], output[1, keep], output[2, keep], output[3, keep]
    xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    # Per-class NMS, as Ultralytics does: a person beside a bike both survive.
    picked = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), confidence.tolist(), class_id.tolist(), confidence_threshold, iou_threshold
    )
    idx = np.asarray(picked, dtype=np.intp).reshape(-1)
    if idx.size == 0:
        return RawBoxes.empty()
    idx = idx[np.argsort(-confidence[idx], kind="stable")][:max_detections]
    xyxy = xywh[idx].astype(np.float32, copy=False)
    xyxy[:, 2] += xyxy[:, 0]
    xyxy[:, 3] += xyxy[:, 1]
    return RawBoxes(xyxy, confidence[idx], class_id[idx])


def to_source(raw: RawBoxes, box: Letterbox) -> Detections:
    """Map boxes from network pixels to the source image's pixels (in place on ``raw``)."""
    if raw.xyxy.shape[0] == 0:
        return Detections.empty()
    xyxy = raw.xyxy
    xs, ys = xyxy[:, 0::2], xyxy[:, 1::2]  # views: x1, x2 and y1, y2
    xs -= box.pad_x
    ys -= box.pad_y
    xyxy /= box.scale
    src_h, src_w = box.src_hw
    np.clip(xs, 0, src_w, out=xs)
    np.clip(ys, 0, src_h, out=ys)
    return Detections.untracked(xyxy, raw.confidence, raw.class_id)


def decode_output(
    output: npt.NDArray[np.float32],
    box: Letterbox,
    confidence_threshold: float,
    iou_threshold: float,
    max_detections: int = 300,
) -> Detections:
    """Decode one image's [4 + classes, N] output to Detections in source pixels."""
    return to_source(raw_boxes(output, confidence_threshold, iou_threshold, max_detections), box)

"""Runs the Ultralytics backend inside the torch venv (.venv-gpu) and prints JSON.

The project's own venv stays free of torch (the CPU install must not carry it),
so ``test_ultralytics_backend.py`` runs this script with ``.venv-gpu/bin/python``
and compares what it prints with the OpenVINO backend in its own process.

    python ultralytics_probe.py MODEL IMAGES.npz [--pt-from-yaml OUT.pt]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vision.detector.backend import create_backend
from vision.detector.detector import Detector


def _detections(model: Path, images: list[np.ndarray], max_batch: int) -> list[list[list[float]]]:
    detector = Detector(
        create_backend("ultralytics", model, "cpu", (640, 640), max_batch), 0.25, 0.45
    )
    found = detector.detect(images)
    return [
        [
            [*map(float, box), float(cls), float(conf)]
            for box, cls, conf in zip(d.xyxy, d.class_id, d.confidence, strict=True)
        ]
        for d in found
    ]


def _pt_batch_vs_single(out: Path, images: list[np.ndarray]) -> dict[str, object]:
    """A real PyTorch (.pt) checkpoint, built from Ultralytics' own yolo11n.yaml.

    No trained .pt can be downloaded here, so its weights are random: this checks
    the .pt path end to end (load, fuse, layout, batching), not accuracy.
    """
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    YOLO("yolo11n.yaml", task="detect").save(str(out))
    backend = create_backend("ultralytics", out, "cpu", (640, 640), 4)
    detector = Detector(backend, 0.25, 0.45)
    sample = images[:4]
    for index, image in enumerate(sample):
        detector.prepare(index, image)
    together = detector.infer_prepared(len(sample)).copy()
    alone = []
    for image in sample:
        detector.prepare(0, image)
        alone.append(detector.infer_prepared(1)[0].copy())
    single = np.stack(alone)
    return {
        "format": str(getattr(backend._model, "format", "?")),  # type: ignore[attr-defined]
        "shape": list(together.shape),
        "max_abs_diff": float(np.abs(together - single).max()),
        "max_abs": float(np.abs(single).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--pt-from-yaml", type=Path)
    args = parser.parse_args()
    with np.load(args.images) as stored:
        # np.savez names them arr_0, arr_1, ...: keep that order.
        names = sorted(stored.files, key=lambda name: int(name.removeprefix("arr_")))
        images = [stored[name] for name in names]
    result: dict[str, object] = {
        "batched": _detections(args.model, images, 4),
        "single": _detections(args.model, images, 1),
    }
    if args.pt_from_yaml:
        result["pt"] = _pt_batch_vs_single(args.pt_from_yaml, images)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

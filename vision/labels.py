"""Map COCO classes of the model to the domain labels the rules use."""

from __future__ import annotations

COCO_TO_DOMAIN: dict[int, str] = {
    0: "person",
    1: "bicycle",
    2: "car",
    3: "motorbike",  # COCO "motorcycle"
    5: "bus",
    7: "truck",
}
DOMAIN_TO_COCO: dict[str, int] = {v: k for k, v in COCO_TO_DOMAIN.items()}


def domain_label(class_id: int) -> str | None:
    return COCO_TO_DOMAIN.get(class_id)

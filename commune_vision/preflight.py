"""Checks beyond the schema: files and models that must exist before the service starts."""

from __future__ import annotations

from core.config import AppConfig
from models.registry import ModelNotFoundError, resolve_model


def preflight_errors(config: AppConfig, check_sources: bool = True) -> list[str]:
    errors: list[str] = []
    for index, camera in enumerate(config.cameras):
        if check_sources and camera.is_file and not camera.file_path.is_file():
            errors.append(
                f"cameras[{index}].url: video file not found: {camera.file_path} "
                "(for the demo clips set COMMUNE_VISION_ASSETS to the folder holding videos/)"
            )
    try:
        resolve_model(config.detector.model)
    except ModelNotFoundError as exc:
        errors.append(str(exc))
    if not config.cameras:
        errors.append("cameras: no cameras configured; add at least one under `cameras:`")
    return errors

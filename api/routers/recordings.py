"""Recorded footage: timeline, footage export (MP4, HLS), incident clips."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["recordings"])

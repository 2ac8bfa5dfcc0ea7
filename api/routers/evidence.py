"""Evidence: lock an incident's footage, export a tamper-evident package."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["evidence"])

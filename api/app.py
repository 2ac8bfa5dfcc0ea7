"""App factory. Dependencies live in the lifespan state, not as attributes on the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.routers import (
    alerts,
    cameras,
    config,
    events,
    evidence,
    health,
    incidents,
    metrics,
    recordings,
    stats,
)
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.repository import IncidentRepository, TrafficRepository
from core.storage.segments import SegmentIndex


class ApiSettings(BaseSettings):
    """What the API needs, from arguments or the environment (``commune-vision run`` sets it)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str = Field(validation_alias=AliasChoices("database_url", "DATABASE_URL"))
    redis_url: str = Field(validation_alias=AliasChoices("redis_url", "REDIS_URL"))
    media_root: Path = Field(
        validation_alias=AliasChoices("media_root", "COMMUNE_VISION_MEDIA_ROOT")
    )
    recordings_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices("recordings_dir", "COMMUNE_VISION_RECORDINGS_DIR"),
        description="default: media_root/recordings",
    )

    @property
    def resolved_recordings_dir(self) -> Path:
        return (self.recordings_dir or self.media_root / "recordings").resolve()


class ApiState(TypedDict):
    repo: IncidentRepository
    traffic: TrafficRepository
    config_store: ConfigStore
    config_lock: asyncio.Lock
    redis: aioredis.Redis
    media_root: Path
    segments: SegmentIndex
    recordings_dir: Path


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[ApiState]:
        engine = make_engine(settings.database_url)
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            yield {
                "repo": IncidentRepository(engine),
                "traffic": TrafficRepository(engine),
                "config_store": ConfigStore(engine),
                "config_lock": asyncio.Lock(),
                "redis": client,
                "media_root": settings.media_root,
                "segments": SegmentIndex(engine),
                "recordings_dir": settings.resolved_recordings_dir,
            }
        finally:
            await client.aclose()
            engine.dispose()

    app = FastAPI(
        title="commune-vision",
        version="0.1.0",
        description="Video analytics for commune operations centers.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(incidents.router)
    app.include_router(cameras.router)
    app.include_router(alerts.router)
    app.include_router(events.router)
    app.include_router(config.router)
    app.include_router(metrics.router)
    app.include_router(stats.router)
    app.include_router(recordings.router)
    app.include_router(evidence.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env``."""
    return create_app(ApiSettings())

"""App factory. Dependencies live in the lifespan state, not as attributes on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import redis.asyncio as aioredis
from fastapi import FastAPI

from api.routers import alerts, cameras, health, incidents
from core.storage.db import make_engine
from core.storage.repository import IncidentRepository


@dataclass(frozen=True, slots=True)
class ApiSettings:
    database_url: str
    redis_url: str
    media_root: Path


class ApiState(TypedDict):
    repo: IncidentRepository
    redis: aioredis.Redis
    media_root: Path


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[ApiState]:
        engine = make_engine(settings.database_url)
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            yield {
                "repo": IncidentRepository(engine),
                "redis": client,
                "media_root": settings.media_root,
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
    return app

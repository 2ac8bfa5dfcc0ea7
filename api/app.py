"""App factory. Dependencies live in the lifespan state, not as attributes on the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.bootstrap import bootstrap_admin, build_auth_config
from api.errors import add_error_docs, http_error_handler, validation_error_handler
from api.http_guards import RequestLimitsMiddleware, SecurityHeadersMiddleware
from api.live_preview import LivePreview
from api.openapi_security import add_security
from api.replay_jobs import ReplayJobs, ReplayRunner
from api.routers import (
    alerts,
    audit,
    auth,
    camera_test,
    cameras,
    config,
    console,
    detections,
    events,
    evidence,
    feedback,
    health,
    incidents,
    live,
    metrics,
    recordings,
    replays,
    review,
    stats,
    users,
    webhooks,
    workers,
)
from api.security import AuthConfig
from api.telemetry import ApiMetrics, HttpMetricsMiddleware
from api.unavailable import bus_unavailable_handler, database_unavailable_handler
from core.storage.audit import AuditLog
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.feedback import FeedbackStats
from core.storage.repository import IncidentRepository, TrafficRepository
from core.storage.review import ReviewStore
from core.storage.segments import SegmentIndex
from core.storage.users import UserRepository
from core.storage.webhooks import WebhookStore


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
    secret_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("secret_key", "COMMUNE_VISION_SECRET_KEY"),
        description="token signing key; default: a key file made in media_root",
    )
    token_ttl_s: int = Field(
        12 * 3600,  # a police shift
        ge=1,
        validation_alias=AliasChoices("token_ttl_s", "COMMUNE_VISION_TOKEN_TTL_S"),
    )
    login_max_failures: int = Field(
        5, ge=1, description="failed logins per username and client address per window"
    )
    login_window_s: int = Field(300, ge=1)
    admin_username: str = Field(
        "admin", validation_alias=AliasChoices("admin_username", "COMMUNE_VISION_ADMIN_USERNAME")
    )
    admin_password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("admin_password", "COMMUNE_VISION_ADMIN_PASSWORD"),
        description="creates admin_username on a start with no user at all",
    )
    alert_heartbeat_s: float = Field(
        15.0,
        gt=0,
        validation_alias=AliasChoices("alert_heartbeat_s", "COMMUNE_VISION_ALERT_HEARTBEAT_S"),
        description="SSE keep-alive comment after this long without alerts",
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
    users: UserRepository
    auth: AuthConfig
    review: ReviewStore
    audit: AuditLog
    feedback: FeedbackStats
    engine: Engine
    webhooks: WebhookStore
    api_metrics: ApiMetrics
    alert_heartbeat_s: float
    live_preview: LivePreview
    replays: ReplayJobs


def create_app(settings: ApiSettings, replay_runner: ReplayRunner | None = None) -> FastAPI:
    """``replay_runner``: the what-if replay, which needs the detector and the rules that
    ``api`` may not import; the composition root passes it (commune_vision/processes.py)."""
    api_metrics = ApiMetrics()  # one per app: the middleware and /metrics share it

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[ApiState]:
        engine = make_engine(settings.database_url)
        users_repo = UserRepository(engine)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        auth_config = build_auth_config(
            secret,
            settings.media_root,
            settings.token_ttl_s,
            settings.login_max_failures,
            settings.login_window_s,
        )
        admin_password = settings.admin_password
        bootstrap_admin(
            users_repo,
            settings.admin_username,
            admin_password.get_secret_value() if admin_password else None,
        )
        client = aioredis.Redis.from_url(settings.redis_url)
        config_store = ConfigStore(engine)
        live_preview = LivePreview(client, config_store)  # one ring mapping per process
        replay_jobs = ReplayJobs(replay_runner)
        try:
            yield {
                "repo": IncidentRepository(engine),
                "traffic": TrafficRepository(engine),
                "config_store": config_store,
                "config_lock": asyncio.Lock(),
                "redis": client,
                "media_root": settings.media_root,
                "segments": SegmentIndex(engine),
                "recordings_dir": settings.resolved_recordings_dir,
                "users": users_repo,
                "auth": auth_config,
                "review": ReviewStore(engine),
                "audit": AuditLog(engine),
                "feedback": FeedbackStats(engine),
                "engine": engine,
                "webhooks": WebhookStore(engine),
                "api_metrics": api_metrics,
                "alert_heartbeat_s": settings.alert_heartbeat_s,
                "live_preview": live_preview,
                "replays": replay_jobs,
            }
        finally:
            await asyncio.to_thread(replay_jobs.close)  # a running replay stops first
            live_preview.close()
            await client.aclose()
            engine.dispose()

    app = FastAPI(
        title="commune-vision",
        version="0.1.0",
        description="Video analytics for commune operations centers.",
        lifespan=lifespan,
        # A locked or unreachable database or bus: 503 with Retry-After, not 500.
        exception_handlers={
            OperationalError: database_unavailable_handler,
            RedisConnectionError: bus_unavailable_handler,
            RedisTimeoutError: bus_unavailable_handler,
        },
    )
    # Outermost last: every answer, the guards' own and the metrics', gets the headers.
    app.add_middleware(HttpMetricsMiddleware, metrics=api_metrics)
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    for module in ROUTERS:  # the console last: it serves "/" and its assets
        app.include_router(module.router)
    add_security(app)
    add_error_docs(app)
    return app


ROUTERS = (
    health,
    auth,
    users,
    incidents,
    cameras,
    live,
    detections,
    camera_test,
    alerts,
    events,
    config,
    metrics,
    stats,
    recordings,
    evidence,
    review,
    audit,
    feedback,
    webhooks,
    replays,
    workers,
    console,
)


def app_from_env(replay_runner: ReplayRunner | None = None) -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env`` (no what-if replay), and
    for ``commune-vision run``, which passes the replay runner."""
    return create_app(ApiSettings(), replay_runner)

"""Typed access to what the lifespan put in the request state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from api.live_preview import LivePreview
from api.replay_jobs import ReplayJobs
from api.security import AuthConfig
from api.telemetry import ApiMetrics
from core.storage.audit import AuditLog
from core.storage.config_store import ConfigStore
from core.storage.feedback import FeedbackStats
from core.storage.repository import IncidentRepository, TrafficRepository
from core.storage.review import ReviewStore
from core.storage.segments import SegmentIndex
from core.storage.users import UserRepository
from core.storage.webhooks import WebhookStore


def get_repo(conn: HTTPConnection) -> IncidentRepository:
    return cast(IncidentRepository, conn.state.repo)


def get_redis(conn: HTTPConnection) -> aioredis.Redis:
    return cast(aioredis.Redis, conn.state.redis)


def get_media_root(conn: HTTPConnection) -> Path:
    return cast(Path, conn.state.media_root)


def get_config_store(conn: HTTPConnection) -> ConfigStore:
    return cast(ConfigStore, conn.state.config_store)


def get_config_lock(conn: HTTPConnection) -> asyncio.Lock:
    return cast(asyncio.Lock, conn.state.config_lock)


def get_traffic_repo(conn: HTTPConnection) -> TrafficRepository:
    return cast(TrafficRepository, conn.state.traffic)


def get_segments(conn: HTTPConnection) -> SegmentIndex:
    return cast(SegmentIndex, conn.state.segments)


def get_recordings_dir(conn: HTTPConnection) -> Path:
    return cast(Path, conn.state.recordings_dir)


def get_users(conn: HTTPConnection) -> UserRepository:
    return cast(UserRepository, conn.state.users)


def get_auth_config(conn: HTTPConnection) -> AuthConfig:
    return cast(AuthConfig, conn.state.auth)


def get_review(conn: HTTPConnection) -> ReviewStore:
    return cast(ReviewStore, conn.state.review)


def get_audit(conn: HTTPConnection) -> AuditLog:
    return cast(AuditLog, conn.state.audit)


def get_feedback(conn: HTTPConnection) -> FeedbackStats:
    return cast(FeedbackStats, conn.state.feedback)


def get_webhooks(conn: HTTPConnection) -> WebhookStore:
    return cast(WebhookStore, conn.state.webhooks)


def get_api_metrics(conn: HTTPConnection) -> ApiMetrics:
    return cast(ApiMetrics, conn.state.api_metrics)


def get_alert_heartbeat_s(conn: HTTPConnection) -> float:
    return cast(float, conn.state.alert_heartbeat_s)


def get_engine(conn: HTTPConnection) -> Engine:
    return cast(Engine, conn.state.engine)


def get_live_preview(conn: HTTPConnection) -> LivePreview:
    return cast(LivePreview, conn.state.live_preview)


def get_replays(conn: HTTPConnection) -> ReplayJobs:
    return cast(ReplayJobs, conn.state.replays)

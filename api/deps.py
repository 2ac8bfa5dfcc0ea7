"""Typed access to what the lifespan put in the request state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from starlette.requests import HTTPConnection

from core.storage.config_store import ConfigStore
from core.storage.repository import IncidentRepository, TrafficRepository
from core.storage.segments import SegmentIndex


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

"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can
serve, because the database and the bus answer) for supervisors and load balancers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Response
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api.deps import get_engine, get_redis
from api.schemas import Health

router = APIRouter(tags=["ops"])

READY_TIMEOUT_S = 3.0  # a dependency slower than this is as good as down to a balancer


@router.get("/healthz", response_model=Health)
async def healthz(
    response: Response, client: Annotated[aioredis.Redis, Depends(get_redis)]
) -> Health:
    checks = {"api": "ok"}
    try:
        await client.ping()
        checks["bus"] = "ok"
    except Exception as exc:  # the bus is down: report it, stay alive
        checks["bus"] = f"error: {type(exc).__name__}"
        response.status_code = 503
    return Health(status="ok" if response.status_code != 503 else "degraded", checks=checks)


def _query_db(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _check(probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_S)
    except TimeoutError:
        return f"error: no answer within {READY_TIMEOUT_S:.0f} s"
    except Exception as exc:
        return f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return "ok"


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "a dependency is down; checks say which"}},
)
async def readyz(
    response: Response,
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    engine: Annotated[Engine, Depends(get_engine)],
) -> Health:
    """200 only when the database and the bus both answer; 503 names what is down."""
    database, bus = await asyncio.gather(
        _check(run_in_threadpool(_query_db, engine)), _check(client.ping())
    )
    checks = {"database": database, "bus": bus}
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = 503
    return Health(status="ready" if ready else "not_ready", checks=checks)

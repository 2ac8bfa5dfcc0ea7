"""Camera configuration versions: who changed what, when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from api.deps import get_config_store
from api.schemas import ConfigVersionOut
from core.storage.config_store import ConfigStore

router = APIRouter(prefix="/api/config", tags=["config"])


@router.get("/versions", response_model=list[ConfigVersionOut])
async def config_versions(
    store: Annotated[ConfigStore, Depends(get_config_store)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ConfigVersionOut]:
    history = await run_in_threadpool(store.history, limit)
    return [
        ConfigVersionOut(
            id=v.id,
            created_ts=v.created_ts,
            author=v.author,
            comment=v.comment,
            camera_ids=[c.id for c in v.cameras],
        )
        for v in history
    ]

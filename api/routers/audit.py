"""The audit log, read-only: there is deliberately no route that changes or removes
an entry (entries are written only with the change they record)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, Principal, require
from api.deps import get_audit
from api.params import MAX_ROW_ID, ts_query
from api.routers.review import audit_out
from api.schemas import AuditPage
from core.storage.audit import AuditLog, AuditQuery

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def search_audit(
    audit: Annotated[AuditLog, Depends(get_audit)],
    _principal: Annotated[Principal, Depends(require(*ADMIN_ONLY))],
    entity_type: Annotated[
        str | None, Query(description="incident | camera | camera_config")
    ] = None,
    entity_id: Annotated[str | None, Query(description="with entity_type: one entity")] = None,
    actor: Annotated[str | None, Query(description="e.g. user:anh, api_key:vms-bridge")] = None,
    since_ts: Annotated[float | None, ts_query("time ≥, UTC epoch seconds")] = None,
    until_ts: Annotated[float | None, ts_query("time <, UTC epoch seconds")] = None,
    cursor: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Who changed what, newest first. Police read one incident's entries through
    ``GET /api/incidents/{id}/history``."""
    if since_ts is not None and until_ts is not None and until_ts <= since_ts:
        raise HTTPException(422, "until_ts must be later than since_ts")
    query = AuditQuery(
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        since_ts=since_ts,
        until_ts=until_ts,
        before_id=cursor,
        limit=limit,
    )
    items = await run_in_threadpool(audit.search, query)
    next_cursor = items[-1].id if len(items) == limit else None
    return AuditPage(items=[audit_out(e) for e in items], next_cursor=next_cursor)

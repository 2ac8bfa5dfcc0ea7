"""Incidents: search, one incident, its snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse

from api.deps import get_media_root, get_repo
from api.schemas import IncidentOut, IncidentPage
from core.storage.repository import IncidentQuery, IncidentRepository
from core.types import Incident

router = APIRouter(prefix="/api/incidents", tags=["incidents"])

Repo = Annotated[IncidentRepository, Depends(get_repo)]


@router.get("", response_model=IncidentPage)
def search_incidents(
    repo: Repo,
    camera_id: Annotated[list[str], Query(description="repeat for several cameras")] = [],  # noqa: B006
    type: Annotated[list[str], Query(description="incident types, e.g. intrusion")] = [],  # noqa: B006
    since_ts: Annotated[float | None, Query(description="start time ≥, UTC epoch seconds")] = None,
    until_ts: Annotated[float | None, Query(description="start time <, UTC epoch seconds")] = None,
    cursor: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9a-f]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    if since_ts is not None and until_ts is not None and until_ts <= since_ts:
        raise HTTPException(422, "until_ts must be later than since_ts")
    items = repo.search(
        IncidentQuery(
            camera_ids=camera_id,
            types=type,
            since_ts=since_ts,
            until_ts=until_ts,
            before_id=cursor,
            limit=limit,
        )
    )
    next_cursor = items[-1].id if len(items) == limit else None
    return IncidentPage(
        items=[IncidentOut.from_incident(i) for i in items], next_cursor=next_cursor
    )


def _get(repo: IncidentRepository, incident_id: str) -> Incident:
    incident = repo.get(incident_id)
    if incident is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    return incident


@router.get("/{incident_id}", response_model=IncidentOut)
def get_incident(repo: Repo, incident_id: str) -> IncidentOut:
    return IncidentOut.from_incident(_get(repo, incident_id))


@router.get(
    "/{incident_id}/snapshot",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no snapshot"}},
)
def get_snapshot(
    repo: Repo, media_root: Annotated[Path, Depends(get_media_root)], incident_id: str
) -> FileResponse:
    incident = _get(repo, incident_id)
    if not incident.snapshot_path:
        raise HTTPException(404, f"incident {incident_id!r} has no snapshot")
    root = media_root.resolve()
    path = (root / incident.snapshot_path).resolve()
    # Paths come from our own writer, but never serve anything outside the media root.
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, f"snapshot of incident {incident_id!r} is missing on disk")
    return FileResponse(path, media_type="image/jpeg")

"""Incidents: search, one incident, its snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import StringConstraints

from api.auth import EVERYONE, require
from api.deps import get_media_root, get_repo
from api.params import ts_query
from api.schemas import IncidentOut, IncidentPage
from core.storage.repository import IncidentQuery, IncidentRepository
from core.storage.search import Cursor, InvalidCursorError, SortOrder
from core.types import Incident, IncidentStatus

router = APIRouter(prefix="/api/incidents", tags=["incidents"])

Repo = Annotated[IncidentRepository, Depends(get_repo)]


MAX_VALUES = 50  # per repeated parameter; more would be a scan in disguise
Names = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _values(description: str) -> Any:
    return Query(description=f"{description}; repeat for any of several", max_length=MAX_VALUES)


@router.get("", response_model=IncidentPage, dependencies=[Depends(require(*EVERYONE))])
def search_incidents(
    repo: Repo,
    camera_id: Annotated[list[Names], _values("camera id")] = [],  # noqa: B006
    type: Annotated[list[Names], _values("incident type, e.g. intrusion")] = [],  # noqa: B006
    since_ts: Annotated[float | None, ts_query("start time ≥, UTC epoch seconds")] = None,
    until_ts: Annotated[float | None, ts_query("start time <, UTC epoch seconds")] = None,
    label: Annotated[list[Names], _values("detected class among its labels, e.g. person")] = [],  # noqa: B006
    zone: Annotated[list[Names], _values("zone name")] = [],  # noqa: B006
    status: Annotated[list[IncidentStatus], _values("review status")] = [],  # noqa: B006
    min_score: Annotated[
        float | None, Query(ge=0.0, le=1.0, description="peak score ≥ this")
    ] = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    evidence_locked: bool | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="text in its notes: case-insensitive substring, % and _ are literal",
        ),
    ] = None,
    sort: Annotated[SortOrder, Query(description="newest | oldest | score (highest first)")] = (
        "newest"
    ),
    cursor: Annotated[
        str | None,
        Query(
            max_length=512,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`next_cursor` of the previous page, with the same sort",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> IncidentPage:
    """Incidents matching every given filter (each list: any of its values), one page."""
    if since_ts is not None and until_ts is not None and until_ts <= since_ts:
        raise HTTPException(422, "until_ts must be later than since_ts")
    try:
        after = Cursor.decode(cursor, sort) if cursor is not None else None
    except InvalidCursorError as exc:
        raise HTTPException(422, f"cursor is invalid: {exc}") from exc
    items = repo.search(
        IncidentQuery(
            camera_ids=camera_id,
            types=type,
            since_ts=since_ts,
            until_ts=until_ts,
            labels=label,
            zones=zone,
            statuses=[s.value for s in status],
            min_score=min_score,
            assignee=assignee,
            evidence_locked=evidence_locked,
            text=q,
            sort=sort,
            after=after,
            limit=limit,
        )
    )
    next_cursor = Cursor.after(sort, items[-1]).encode() if len(items) == limit else None
    return IncidentPage(
        items=[IncidentOut.from_incident(i) for i in items], next_cursor=next_cursor
    )


def _get(repo: IncidentRepository, incident_id: str) -> Incident:
    incident = repo.get(incident_id)
    if incident is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    return incident


@router.get(
    "/{incident_id}", response_model=IncidentOut, dependencies=[Depends(require(*EVERYONE))]
)
def get_incident(repo: Repo, incident_id: str) -> IncidentOut:
    return IncidentOut.from_incident(_get(repo, incident_id))


@router.get(
    "/{incident_id}/snapshot",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no snapshot"}},
    dependencies=[Depends(require(*EVERYONE))],
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

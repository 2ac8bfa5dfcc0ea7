"""Police review of an incident: status changes, assignment, notes, its history.

One route per action, so each declares the roles that may take it: operators in
the control room acknowledge; police and admins decide (confirm, false alarm,
close) and assign; only admins reopen a closed incident. The transitions are in
``core.storage.review``. Every change is audited in its own transaction and then
published on the incident stream as a ``review`` alert, so dashboards update live.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Body, Depends, HTTPException, status
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, MEDIA, REVIEW, Principal, require
from api.deps import get_audit, get_redis, get_repo, get_review
from api.schemas import (
    AssigneeIn,
    AuditEntryOut,
    FalseAlarmIn,
    IncidentOut,
    NoteIn,
    NoteOut,
    ReviewIn,
)
from core.bus import INCIDENT_STREAM, INCIDENT_STREAM_MAXLEN, encode_event
from core.storage.audit import AuditEntry, AuditLog
from core.storage.repository import IncidentRepository
from core.storage.review import (
    IncidentNotFoundError,
    Note,
    ReviewAction,
    ReviewConflictError,
    ReviewError,
    ReviewStore,
)
from core.types import Incident

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/incidents", tags=["review"])

Store = Annotated[ReviewStore, Depends(get_review)]
Redis = Annotated[aioredis.Redis, Depends(get_redis)]
Media = Annotated[Principal, Depends(require(*MEDIA))]
Reviewer = Annotated[Principal, Depends(require(*REVIEW))]
Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]
OptionalReview = Annotated[ReviewIn | None, Body()]

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown incident"},
    409: {"description": "not allowed from the current status, or it changed meanwhile"},
    422: {"description": "a field is wrong; the message names it"},
}


def http_error(exc: ReviewError) -> HTTPException:
    if isinstance(exc, IncidentNotFoundError):
        return HTTPException(404, str(exc))
    if isinstance(exc, ReviewConflictError):
        return HTTPException(409, str(exc))
    return HTTPException(422, str(exc))


async def publish_review(client: aioredis.Redis, incident: Incident) -> None:
    """After the commit: the change stands even if Redis is down, so a failed
    publish is logged, not turned into an error the reviewer would retry."""
    try:
        await client.xadd(
            INCIDENT_STREAM,
            encode_event("review", incident.to_json_dict()),  # type: ignore[arg-type]
            maxlen=INCIDENT_STREAM_MAXLEN,
            approximate=True,
        )
    except RedisError as exc:
        log.warning("review of incident %s not published: %s", incident.id, exc)


async def _review(
    store: ReviewStore,
    client: aioredis.Redis,
    principal: Principal,
    incident_id: str,
    action: ReviewAction,
    body: ReviewIn | None,
    category: str | None = None,
) -> IncidentOut:
    body = body or ReviewIn()
    try:
        incident = await run_in_threadpool(
            store.transition,
            incident_id,
            action,
            principal.actor,
            category=category,
            note=body.note,
            expected_status=body.expected_status.value if body.expected_status else None,
        )
    except ReviewError as exc:
        raise http_error(exc) from exc
    await publish_review(client, incident)
    return IncidentOut.from_incident(incident)


@router.post("/{incident_id}/acknowledge", response_model=IncidentOut, responses=ERRORS)
async def acknowledge(
    store: Store, client: Redis, principal: Media, incident_id: str, body: OptionalReview = None
) -> IncidentOut:
    """Seen, being handled: ``new → acknowledged``."""
    return await _review(store, client, principal, incident_id, ReviewAction.ACKNOWLEDGE, body)


@router.post("/{incident_id}/confirm", response_model=IncidentOut, responses=ERRORS)
async def confirm(
    store: Store, client: Redis, principal: Reviewer, incident_id: str, body: OptionalReview = None
) -> IncidentOut:
    """A real incident: from ``new``, ``acknowledged`` or ``false_alarm``."""
    return await _review(store, client, principal, incident_id, ReviewAction.CONFIRM, body)


@router.post("/{incident_id}/false-alarm", response_model=IncidentOut, responses=ERRORS)
async def false_alarm(
    store: Store, client: Redis, principal: Reviewer, incident_id: str, body: FalseAlarmIn
) -> IncidentOut:
    """Not a real incident, and why (``category``): from ``new``, ``acknowledged`` or
    ``confirmed``. The category feeds the false-alarm statistics."""
    action = ReviewAction.FALSE_ALARM
    return await _review(store, client, principal, incident_id, action, body, body.category)


@router.post("/{incident_id}/close", response_model=IncidentOut, responses=ERRORS)
async def close(
    store: Store, client: Redis, principal: Reviewer, incident_id: str, body: OptionalReview = None
) -> IncidentOut:
    """Done: from ``confirmed`` or ``false_alarm``; final except for an admin's reopen."""
    return await _review(store, client, principal, incident_id, ReviewAction.CLOSE, body)


@router.post("/{incident_id}/reopen", response_model=IncidentOut, responses=ERRORS)
async def reopen(
    store: Store, client: Redis, principal: Admin, incident_id: str, body: OptionalReview = None
) -> IncidentOut:
    """``closed → acknowledged``, to be decided again (clears the false-alarm category)."""
    return await _review(store, client, principal, incident_id, ReviewAction.REOPEN, body)


@router.put("/{incident_id}/assignee", response_model=IncidentOut, responses=ERRORS)
async def assign(
    store: Store, client: Redis, principal: Reviewer, incident_id: str, body: AssigneeIn
) -> IncidentOut:
    """Assign to an active user (422 otherwise), or unassign with ``null``."""
    try:
        incident = await run_in_threadpool(
            store.assign, incident_id, body.assignee, principal.actor
        )
    except ReviewError as exc:
        raise http_error(exc) from exc
    await publish_review(client, incident)
    return IncidentOut.from_incident(incident)


def _note_out(note: Note) -> NoteOut:
    return NoteOut(
        id=note.id, incident_id=note.incident_id, ts=note.ts, author=note.author, text=note.text
    )


@router.post(
    "/{incident_id}/notes",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
async def add_note(store: Store, principal: Media, incident_id: str, body: NoteIn) -> NoteOut:
    """Append a note (1 to 4000 characters); notes are never edited or deleted."""
    try:
        note = await run_in_threadpool(store.add_note, incident_id, body.text, principal.actor)
    except ReviewError as exc:
        raise http_error(exc) from exc
    return _note_out(note)


@router.get("/{incident_id}/notes", response_model=list[NoteOut], responses=ERRORS)
async def list_notes(store: Store, _principal: Media, incident_id: str) -> list[NoteOut]:
    """Oldest first."""
    try:
        notes = await run_in_threadpool(store.notes, incident_id)
    except ReviewError as exc:
        raise http_error(exc) from exc
    return [_note_out(n) for n in notes]


def audit_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        ts=entry.ts,
        actor=entry.actor,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        before=entry.before,
        after=entry.after,
    )


@router.get("/{incident_id}/history", response_model=list[AuditEntryOut], responses=ERRORS)
async def history(
    repo: Annotated[IncidentRepository, Depends(get_repo)],
    audit: Annotated[AuditLog, Depends(get_audit)],
    _principal: Media,
    incident_id: str,
) -> list[AuditEntryOut]:
    """Every change people made to the incident, oldest first: who, when, before, after."""
    if await run_in_threadpool(repo.get, incident_id) is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    entries = await run_in_threadpool(audit.history, "incident", incident_id)
    return [audit_out(e) for e in entries]

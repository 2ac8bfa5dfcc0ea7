"""The false-positive loop, all on this box: how often each rule cries wolf, what
threshold the reviews suggest, and "suppress similar" for a reviewed false alarm.
The method is in ``core.storage.feedback``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from api.auth import EVERYONE, REVIEW, Principal, require
from api.deps import get_config_lock, get_config_store, get_feedback, get_redis, get_repo
from api.params import ts_query
from api.routers.cameras import save_cameras
from api.routers.review import ERRORS, http_error
from api.schemas import FalseAlarmRateOut, SuppressionOut, ThresholdSuggestionOut
from core.storage.audit import Change
from core.storage.config_store import ConfigStore
from core.storage.feedback import MIN_REVIEWED, FeedbackStats
from core.storage.feedback import suppress_like as plan_suppression
from core.storage.repository import IncidentRepository
from core.storage.review import ReviewError

router = APIRouter(tags=["feedback"])

Stats = Annotated[FeedbackStats, Depends(get_feedback)]
Store = Annotated[ConfigStore, Depends(get_config_store)]
Since = Annotated[float | None, ts_query("incidents started ≥, UTC epoch seconds")]
Until = Annotated[float | None, ts_query("incidents started <, UTC epoch seconds")]


def _check_window(since_ts: float | None, until_ts: float | None) -> None:
    if since_ts is not None and until_ts is not None and until_ts <= since_ts:
        raise HTTPException(422, "until_ts must be later than since_ts")


@router.get(
    "/api/feedback/false-alarm-rates",
    response_model=list[FalseAlarmRateOut],
    dependencies=[Depends(require(*EVERYONE))],
)
async def false_alarm_rates(
    stats: Stats, since_ts: Since = None, until_ts: Until = None
) -> list[FalseAlarmRateOut]:
    """Per camera, rule and zone: incidents, how many were reviewed (have a verdict),
    how many of those were false alarms, the rate, and the false alarms per category."""
    _check_window(since_ts, until_ts)
    rates = await run_in_threadpool(stats.false_alarm_rates, since_ts, until_ts)
    return [
        FalseAlarmRateOut(
            camera_id=r.camera_id,
            rule=r.rule,
            zone=r.zone,
            incidents=r.incidents,
            reviewed=r.reviewed,
            confirmed=r.confirmed,
            false_alarms=r.false_alarms,
            rate=r.rate,
            categories=r.categories,
        )
        for r in rates
    ]


@router.get(
    "/api/feedback/suggestions",
    response_model=list[ThresholdSuggestionOut],
    dependencies=[Depends(require(*REVIEW))],
)
async def suggestions(
    stats: Stats,
    store: Store,
    since_ts: Since = None,
    until_ts: Until = None,
    min_reviewed: Annotated[int, Query(ge=2, le=10_000)] = MIN_REVIEWED,
) -> list[ThresholdSuggestionOut]:
    """A ``min_confidence`` per rule of the live config, from its reviewed incidents.

    For a rule with at least ``min_reviewed`` verdicts: the highest threshold that,
    applied to the reviewed incidents' peak scores, would have removed at least
    50 % of the false alarms (peak score below it) while keeping at least 95 % of
    the confirmed ones (peak score at or above it). Candidates are the two-decimal
    values just above each false alarm's peak score. Rules whose threshold is
    already that high, or that measure the picture rather than detections (tamper,
    camera offline), get none. The counts it is based on come with each suggestion.
    """
    _check_window(since_ts, until_ts)
    latest = await run_in_threadpool(store.latest)
    cameras = latest.cameras if latest is not None else []
    found = await run_in_threadpool(stats.suggestions, cameras, since_ts, until_ts, min_reviewed)
    return [
        ThresholdSuggestionOut(
            camera_id=s.camera_id,
            rule=s.rule,
            rule_type=s.rule_type,
            reviewed=s.reviewed,
            confirmed=s.confirmed,
            false_alarms=s.false_alarms,
            current_min_confidence=s.current_min_confidence,
            suggested_min_confidence=s.suggested_min_confidence,
            false_alarms_removed=s.false_alarms_removed,
            confirmed_kept=s.confirmed_kept,
            false_alarm_reduction=s.false_alarm_reduction,
            confirmed_retention=s.confirmed_retention,
        )
        for s in found
    ]


@router.post(
    "/api/incidents/{incident_id}/suppress-similar",
    response_model=SuppressionOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
async def suppress_similar(
    repo: Annotated[IncidentRepository, Depends(get_repo)],
    store: Store,
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    lock: Annotated[asyncio.Lock, Depends(get_config_lock)],
    principal: Annotated[Principal, Depends(require(*REVIEW))],
    incident_id: str,
) -> SuppressionOut:
    """For a reviewed false alarm: a new camera config version in which the incident's
    rule needs a confidence just above the incident's peak score, so the same kind of
    detection in that rule's zone no longer fires it. Audited on the camera and on the
    incident, and announced to the pipeline like any camera edit. 409 if the incident
    is not a false alarm or the rule is already that strict."""
    async with lock:
        incident = await run_in_threadpool(repo.get, incident_id)
        if incident is None:
            raise HTTPException(404, f"incident {incident_id!r} not found")
        latest = await run_in_threadpool(store.latest)
        try:
            cameras, plan = plan_suppression(incident, latest.cameras if latest else [])
        except ReviewError as exc:
            raise http_error(exc) from exc
        before = {"min_confidence": plan.min_confidence_before}
        after = {"min_confidence": plan.min_confidence_after}
        comment = (
            f"suppress similar to false alarm {incident.id} "
            f"({incident.false_alarm_category}): rule {plan.rule} min_confidence "
            f"{plan.min_confidence_before} -> {plan.min_confidence_after}"
        )
        actor = principal.actor
        path = f"rules.{plan.rule}"

        def audit(version: int) -> list[Change]:
            return [
                Change(
                    actor,
                    "camera.suppress_similar",
                    "camera",
                    plan.camera_id,
                    {path: before},
                    {path: after, "config_version": version, "incident_id": incident_id},
                ),
                Change(
                    actor,
                    "incident.suppress_similar",
                    "incident",
                    incident_id,
                    None,
                    {"config_version": version, "camera_id": plan.camera_id, path: after},
                ),
            ]

        version = await save_cameras(store, client, cameras, actor, comment, audit)
    return SuppressionOut(
        version=version,
        incident_id=incident_id,
        camera_id=plan.camera_id,
        rule=plan.rule,
        zone=plan.zone,
        before=before,
        after=after,
        comment=comment,
    )

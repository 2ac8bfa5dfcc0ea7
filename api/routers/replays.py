"""What-if replay (admin): try candidate thresholds, zones and rules on a camera's
recorded footage and compare the incidents they would raise with the live config's.

``POST /api/replays`` checks everything it can at once (the camera, the window, that
footage exists, that the candidate config is valid) so a job fails only for reasons
found while replaying; then it queues the job (``api/replay_jobs.py``) and answers
``202``. ``GET /api/replays/{id}`` reports its status, progress and result.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, Principal, require
from api.deps import get_config_store, get_replays, get_segments
from api.replay_jobs import ReplayBusyError, ReplayJob, ReplayJobs
from api.replay_schemas import (
    MAX_REPLAY_WINDOW_S,
    ReplayJobOut,
    ReplayRequest,
    ReplayResultOut,
)
from core.config import CameraConfig
from core.storage.config_store import ConfigStore
from core.storage.segments import SegmentIndex

router = APIRouter(prefix="/api/replays", tags=["replays"])

Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]
Jobs = Annotated[ReplayJobs, Depends(get_replays)]
NOT_FOUND = "replay {id!r} not found: replays are kept in memory, the newest 10 only"


def _field_error(loc: list[str | int], msg: str) -> HTTPException:
    """A 422 shaped like FastAPI's own, so clients (the console) name the field."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}],
    )


def _out(job: ReplayJob, with_result: bool = True) -> ReplayJobOut:
    result = ReplayResultOut.model_validate(job.result) if with_result and job.result else None
    return ReplayJobOut(
        id=job.id,
        camera_id=job.camera_id,
        since_ts=job.since_ts,
        until_ts=job.until_ts,
        status=job.status.value,
        progress=job.progress,
        requested_by=job.requested_by,
        created_ts=job.created_ts,
        started_ts=job.started_ts,
        finished_ts=job.finished_ts,
        error=job.error,
        result=result,
    )


def _merge(current: CameraConfig, body: ReplayRequest) -> CameraConfig:
    """The live camera with the candidate's fields; cross-references (a rule naming a
    zone) are checked on the whole camera and reported under ``candidate``."""
    changes = body.candidate.model_dump(exclude_none=True)
    try:
        return CameraConfig.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {
                "loc": ["body", "candidate", *e["loc"]],
                "msg": e["msg"].removeprefix("Value error, "),
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors) from exc


@router.post(
    "",
    response_model=ReplayJobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "the camera is not configured"},
        409: {"description": "a replay is already running (one at a time)"},
        503: {"description": "this API process has no replay runner"},
    },
)
async def start_replay(
    principal: Admin,
    jobs: Jobs,
    store: Annotated[ConfigStore, Depends(get_config_store)],
    segments: Annotated[SegmentIndex, Depends(get_segments)],
    body: ReplayRequest,
) -> ReplayJobOut:
    """Queue a replay of ``camera_id``'s footage in ``[since_ts, until_ts)`` with the live
    config and with the candidate (the live config with the given fields replaced)."""
    if not jobs.available:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "what-if replay is not available in this API process: run the API as part of "
            "the service (commune-vision run), which gives it the detector",
        )
    if body.until_ts <= body.since_ts:
        raise _field_error(["until_ts"], "until_ts must be later than since_ts")
    if body.until_ts - body.since_ts > MAX_REPLAY_WINDOW_S:
        raise _field_error(
            ["until_ts"],
            f"replay at most {MAX_REPLAY_WINDOW_S / 60:.0f} minutes at a time: "
            "choose a shorter window",
        )
    latest = await run_in_threadpool(store.latest)
    current = next((c for c in latest.cameras if c.id == body.camera_id), None) if latest else None
    if current is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"camera {body.camera_id!r} is not configured; GET /api/cameras lists them",
        )
    candidate = _merge(current, body)
    recorded = await run_in_threadpool(
        segments.overlapping, body.camera_id, body.since_ts, body.until_ts
    )
    if not recorded:
        raise _field_error(
            ["since_ts"],
            f"nothing of camera {body.camera_id!r} is recorded between since_ts and until_ts: "
            "pick a time the footage timeline shows as recorded",
        )
    try:
        job = jobs.start(candidate, current, body.since_ts, body.until_ts, principal.actor)
    except ReplayBusyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _out(job)


@router.get("", response_model=list[ReplayJobOut], dependencies=[Depends(require(*ADMIN_ONLY))])
async def list_replays(jobs: Jobs) -> list[ReplayJobOut]:
    """The kept replays, newest first, without their results (GET one for that)."""
    return [_out(job, with_result=False) for job in jobs.list()]


@router.get(
    "/{replay_id}", response_model=ReplayJobOut, dependencies=[Depends(require(*ADMIN_ONLY))]
)
async def get_replay(jobs: Jobs, replay_id: str) -> ReplayJobOut:
    job = jobs.get(replay_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND.format(id=replay_id))
    return _out(job)


@router.delete(
    "/{replay_id}", response_model=ReplayJobOut, dependencies=[Depends(require(*ADMIN_ONLY))]
)
async def cancel_replay(jobs: Jobs, replay_id: str) -> ReplayJobOut:
    """Stop a queued or running replay at its next frame; a finished one stays as it is."""
    job = jobs.cancel(replay_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND.format(id=replay_id))
    return _out(job)

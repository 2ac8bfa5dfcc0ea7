"""Evidence: lock an incident's footage, export a tamper-evident package."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.auth import REVIEW, Principal, require
from api.deps import get_audit, get_media_root, get_recordings_dir, get_repo, get_segments
from api.schemas import IncidentOut
from core.evidence import (
    EvidenceKeyError,
    build_package,
    load_or_create_key,
)
from core.storage.audit import AuditLog
from core.storage.repository import IncidentRepository
from core.storage.segments import SegmentIndex
from core.types import Incident
from streams.clips import FootageMissing, cut_clip

router = APIRouter(prefix="/api/incidents", tags=["evidence"])

Repo = Annotated[IncidentRepository, Depends(get_repo)]
MediaRoot = Annotated[Path, Depends(get_media_root)]
Reviewer = Annotated[Principal, Depends(require(*REVIEW))]

# The installation's signing key, beside (not inside) the recordings.
KEY_FILE_NAME = "evidence.key"


def _get(repo: IncidentRepository, incident_id: str) -> Incident:
    incident = repo.get(incident_id)
    if incident is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    return incident


def _set_lock(
    repo: IncidentRepository, incident_id: str, locked: bool, principal: Principal
) -> IncidentOut:
    # Audited as the caller, in the same transaction as the change.
    incident = repo.set_evidence_lock(incident_id, locked, principal.actor)
    if incident is None:
        raise HTTPException(404, f"incident {incident_id!r} not found")
    return IncidentOut.from_incident(incident)


@router.put("/{incident_id}/evidence-lock", response_model=IncidentOut)
def lock_evidence(repo: Repo, principal: Reviewer, incident_id: str) -> IncidentOut:
    """Keep the incident's footage whatever the retention policy (idempotent)."""
    return _set_lock(repo, incident_id, True, principal)


@router.delete("/{incident_id}/evidence-lock", response_model=IncidentOut)
def unlock_evidence(repo: Repo, principal: Reviewer, incident_id: str) -> IncidentOut:
    """Let retention treat the footage like any other again (idempotent)."""
    return _set_lock(repo, incident_id, False, principal)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _add_clip(
    incident: Incident,
    segments: SegmentIndex,
    recordings_dir: Path,
    work: Path,
    files: dict[str, Path | bytes],
    notes: list[str],
) -> None:
    since = incident.clip_start_ts
    # An incident still open has no clip end: take the footage up to now.
    until = incident.clip_end_ts or incident.end_ts or time.time()
    window = f"{_utc(since)} to {_utc(until)}"
    if until <= since:
        notes.append(f"no clip: the clip window {window} is empty")
        return
    try:
        clip = cut_clip(
            recordings_dir,
            segments.overlapping(incident.camera_id, since, until),
            since,
            until,
            work / "clip.mp4",
        )
    except FootageMissing:
        notes.append(
            f"no clip: no recorded footage of camera {incident.camera_id!r} is left for "
            f"the clip window {window} (not recorded, or removed by retention)"
        )
        return
    files[f"clips/{incident.id}.mp4"] = clip.path
    notes.append(
        f"clip covers {_utc(clip.start_ts)} to {_utc(clip.end_ts)} for the window {window}; "
        "it starts on the key frame at or before the window start, and gaps in the "
        "recording stay gaps in the clip's timeline"
    )


def _add_snapshot(
    incident: Incident, media_root: Path, files: dict[str, Path | bytes], notes: list[str]
) -> None:
    if not incident.snapshot_path:
        notes.append("no snapshot: the incident has none")
        return
    root = media_root.resolve()
    path = (root / incident.snapshot_path).resolve()
    # Paths come from our own writer, but never package anything outside the media root.
    if not path.is_relative_to(root) or not path.is_file():
        notes.append("no snapshot: its file is missing on disk")
        return
    files[f"snapshots/{incident.id}.jpg"] = path


@router.get(
    "/{incident_id}/evidence.zip",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "the evidence package"},
        404: {"description": "unknown incident"},
    },
    dependencies=[Depends(require(*REVIEW))],
)
def export_evidence(
    repo: Repo,
    segments: Annotated[SegmentIndex, Depends(get_segments)],
    recordings_dir: Annotated[Path, Depends(get_recordings_dir)],
    media_root: MediaRoot,
    audit: Annotated[AuditLog, Depends(get_audit)],
    incident_id: str,
) -> FileResponse:
    """The incident's evidence package: a zip with the clip, the snapshot, the incident
    as JSON, its history and a manifest of SHA-256 hashes signed with the installation
    key (``<media_root>/evidence.key``, created on first export); ``commune-vision
    evidence verify`` checks it.

    When no footage is left for the clip window the package is still exported,
    without ``clips/``, and the manifest's ``notes`` say why: the snapshot and the
    incident record are evidence too. The same goes for a missing snapshot. The
    ``X-Evidence-SHA256`` header carries the hash of the whole zip, for a custody log.
    """
    incident = _get(repo, incident_id)
    now = time.time()
    work = Path(tempfile.mkdtemp(prefix="evidence-"))
    try:
        files: dict[str, Path | bytes] = {}
        notes: list[str] = []
        _add_clip(incident, segments, recordings_dir, work, files, notes)
        _add_snapshot(incident, media_root, files, notes)
        # Creation, every change people made (the audit log), and the state at export.
        reviewed = [
            {"ts": e.ts, "action": e.action, "actor": e.actor, "before": e.before, "after": e.after}
            for e in audit.history("incident", incident.id)
        ]
        history: list[dict[str, Any]] = [
            {"ts": incident.created_ts, "action": "created"},
            *reviewed,
            {
                "ts": now,
                "action": "exported",
                "status": incident.status,
                "evidence_locked": incident.evidence_locked,
            },
        ]
        try:
            key = load_or_create_key(media_root / KEY_FILE_NAME)
        except EvidenceKeyError as exc:
            # Never export unsigned or with a new key in place of a damaged one: the
            # packages already handed out were signed with the old key.
            raise HTTPException(500, f"the installation's evidence key is unusable: {exc}") from exc
        filename = f"incident-{incident.id}-evidence.zip"
        info = build_package(
            work / filename,
            IncidentOut.from_incident(incident).model_dump(mode="json"),
            files,
            history,
            key,
            notes=notes,
            created_ts=now,
        )
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(
        info.path,
        media_type="application/zip",
        filename=filename,
        headers={"X-Evidence-SHA256": info.sha256},
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )

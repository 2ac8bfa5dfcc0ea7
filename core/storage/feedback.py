"""The false-positive loop, all on this box: false-alarm rates from the reviews,
threshold suggestions, and the config change that suppresses incidents like a
reviewed false alarm.

Why a rule's ``min_confidence`` is the knob: an incident's ``peak_score`` is the
highest detector confidence of the detections that made it (crowding: the highest
mean confidence of the people counted), and a rule only considers detections with
confidence ≥ its ``min_confidence``. So a threshold above an incident's peak score
would have kept that incident from firing. The rule is the narrowest scope the
config offers for it: it is tied to one zone (or line) of one camera, so other rules
and cameras are untouched. (Zones have no ignore mask, and a camera's class filter
would change every rule of the camera.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from core.config import CameraConfig
from core.storage.models import IncidentRow
from core.storage.review import ReviewConflictError, ReviewInvalidError, verdict
from core.types import Incident, IncidentStatus

# Rules that measure the picture, not detections: their score is no confidence.
NO_CONFIDENCE_RULE_TYPES = frozenset({"tamper", "camera_offline"})
MIN_REVIEWED = 10
MIN_FALSE_ALARM_REDUCTION = 0.5
MIN_CONFIRMED_RETENTION = 0.95
_VERDICT_STATUSES = (IncidentStatus.CONFIRMED, IncidentStatus.FALSE_ALARM, IncidentStatus.CLOSED)


@dataclass(slots=True)
class FalseAlarmRate:
    camera_id: str
    rule: str
    zone: str | None
    incidents: int = 0
    reviewed: int = 0  # with a verdict: confirmed or false alarm (closed ones included)
    confirmed: int = 0
    false_alarms: int = 0
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.false_alarms / self.reviewed if self.reviewed else None


@dataclass(frozen=True, slots=True)
class ThresholdSuggestion:
    camera_id: str
    rule: str
    rule_type: str
    reviewed: int
    confirmed: int
    false_alarms: int
    current_min_confidence: float
    suggested_min_confidence: float
    false_alarms_removed: int  # reviewed false alarms whose peak score is below the suggestion
    confirmed_kept: int  # reviewed confirmed incidents whose peak score reaches it

    @property
    def false_alarm_reduction(self) -> float:
        return self.false_alarms_removed / self.false_alarms

    @property
    def confirmed_retention(self) -> float:
        return self.confirmed_kept / self.confirmed if self.confirmed else 1.0


def next_threshold(score: float) -> float:
    """The smallest two-decimal threshold strictly above ``score``, at most 1.0.

    Two decimals because people read and edit these in the YAML; the 1e-9 absorbs
    float noise (0.29 * 100 is 28.999…)."""
    return min(1.0, round(math.floor(score * 100 + 1e-9) / 100 + 0.01, 2))


def suggest_threshold(
    confirmed: Sequence[float],
    false_alarms: Sequence[float],
    min_reduction: float = MIN_FALSE_ALARM_REDUCTION,
    min_retention: float = MIN_CONFIRMED_RETENTION,
) -> tuple[float, int, int] | None:
    """The highest threshold ``t`` that would have removed at least ``min_reduction``
    of the false alarms (peak score < t) while keeping at least ``min_retention`` of
    the confirmed incidents (peak score ≥ t); None if no threshold does both.

    Candidates are the thresholds just above each false alarm's peak score (only
    there does the count removed change). Keeping confirmed incidents only falls as
    ``t`` rises, so the highest candidate that still keeps enough removes the most.
    Returns ``(t, false alarms removed, confirmed kept)``.
    """
    if not false_alarms:
        return None
    best: tuple[float, int, int] | None = None
    for t in sorted({next_threshold(s) for s in false_alarms}):
        removed = sum(1 for s in false_alarms if s < t)
        kept = sum(1 for s in confirmed if s >= t)
        retention = kept / len(confirmed) if confirmed else 1.0
        if retention >= min_retention and removed / len(false_alarms) >= min_reduction:
            best = (t, removed, kept)
    return best


class FeedbackStats:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def false_alarm_rates(
        self, since_ts: float | None = None, until_ts: float | None = None
    ) -> list[FalseAlarmRate]:
        """Per camera, rule and zone, of the incidents that started in the window."""
        stmt = (
            select(
                IncidentRow.camera_id,
                IncidentRow.rule,
                IncidentRow.zone,
                IncidentRow.status,
                IncidentRow.false_alarm_category,
                func.count(),
            )
            .where(*_window(since_ts, until_ts))
            .group_by(
                IncidentRow.camera_id,
                IncidentRow.rule,
                IncidentRow.zone,
                IncidentRow.status,
                IncidentRow.false_alarm_category,
            )
        )
        rates: dict[tuple[str, str, str | None], FalseAlarmRate] = {}
        with Session(self._engine) as session:
            for camera_id, rule, zone, status, category, count in session.execute(stmt):
                key = (camera_id, rule, zone)
                rate = rates.setdefault(key, FalseAlarmRate(camera_id, rule, zone))
                rate.incidents += count
                outcome = verdict(status, category)
                if outcome is None:
                    continue
                rate.reviewed += count
                if outcome == "confirmed":
                    rate.confirmed += count
                else:
                    rate.false_alarms += count
                    name = category or "uncategorised"
                    rate.categories[name] = rate.categories.get(name, 0) + count
        return sorted(rates.values(), key=lambda r: (r.camera_id, r.rule, r.zone or ""))

    def suggestions(
        self,
        cameras: Sequence[CameraConfig],
        since_ts: float | None = None,
        until_ts: float | None = None,
        min_reviewed: int = MIN_REVIEWED,
    ) -> list[ThresholdSuggestion]:
        """A ``min_confidence`` per rule of the current config, from its reviewed
        incidents (see ``suggest_threshold``). Rules with fewer than ``min_reviewed``
        verdicts, without a confidence, no longer configured, or whose current
        threshold is already at or above the suggestion get none."""
        stmt = select(
            IncidentRow.camera_id,
            IncidentRow.rule,
            IncidentRow.status,
            IncidentRow.false_alarm_category,
            IncidentRow.peak_score,
        ).where(
            IncidentRow.status.in_([s.value for s in _VERDICT_STATUSES]),
            *_window(since_ts, until_ts),
        )
        scores: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        with Session(self._engine) as session:
            for camera_id, rule_name, status, category, peak in session.execute(stmt):
                confirmed, false_alarms = scores.setdefault((camera_id, rule_name), ([], []))
                outcome = verdict(status, category)
                (confirmed if outcome == "confirmed" else false_alarms).append(float(peak))
        out = []
        for camera in cameras:
            for rule in camera.rules:
                if rule.type in NO_CONFIDENCE_RULE_TYPES:
                    continue
                confirmed, false_alarms = scores.get((camera.id, rule.name), ([], []))
                if len(confirmed) + len(false_alarms) < min_reviewed:
                    continue
                found = suggest_threshold(confirmed, false_alarms)
                if found is None or found[0] <= rule.min_confidence:
                    continue
                threshold, removed, kept = found
                out.append(
                    ThresholdSuggestion(
                        camera_id=camera.id,
                        rule=rule.name,
                        rule_type=rule.type,
                        reviewed=len(confirmed) + len(false_alarms),
                        confirmed=len(confirmed),
                        false_alarms=len(false_alarms),
                        current_min_confidence=rule.min_confidence,
                        suggested_min_confidence=threshold,
                        false_alarms_removed=removed,
                        confirmed_kept=kept,
                    )
                )
        return out


def _window(since_ts: float | None, until_ts: float | None) -> list[ColumnElement[bool]]:
    """Incidents that started in [since_ts, until_ts)."""
    out = []
    if since_ts is not None:
        out.append(IncidentRow.start_ts >= since_ts)
    if until_ts is not None:
        out.append(IncidentRow.start_ts < until_ts)
    return out


@dataclass(frozen=True, slots=True)
class Suppression:
    camera_id: str
    rule: str
    zone: str | None
    min_confidence_before: float
    min_confidence_after: float


def suppress_like(
    incident: Incident, cameras: Sequence[CameraConfig]
) -> tuple[list[CameraConfig], Suppression]:
    """The camera list with the incident's rule raised just above the incident's peak
    score, so the same detection would no longer fire it. Only for a reviewed false
    alarm: suppressing something real would hide the next real one."""
    if verdict(incident.status, incident.false_alarm_category) != "false_alarm":
        raise ReviewConflictError(
            f"incident {incident.id!r} is {incident.status!r}, not a false alarm; "
            "mark it as a false alarm first"
        )
    if incident.type in NO_CONFIDENCE_RULE_TYPES:
        raise ReviewInvalidError(
            "incident",
            f"rule type {incident.type!r} has no detection confidence to raise; change "
            f"the thresholds of rule {incident.rule!r} on camera {incident.camera_id!r} instead",
        )
    camera = next((c for c in cameras if c.id == incident.camera_id), None)
    if camera is None:
        raise ReviewConflictError(f"camera {incident.camera_id!r} is no longer configured")
    rule = next((r for r in camera.rules if r.name == incident.rule), None)
    if rule is None:
        raise ReviewConflictError(
            f"rule {incident.rule!r} is no longer configured on camera {camera.id!r}"
        )
    threshold = next_threshold(incident.peak_score)
    if threshold <= incident.peak_score:
        raise ReviewConflictError(
            f"the incident's peak score {incident.peak_score} cannot be exceeded "
            "(thresholds stop at 1.0); disable the rule or change its zone instead"
        )
    if threshold <= rule.min_confidence:
        raise ReviewConflictError(
            f"rule {rule.name!r} already needs confidence ≥ {rule.min_confidence}, above "
            f"this incident's peak score {incident.peak_score}; nothing to raise"
        )
    raised = rule.model_copy(update={"min_confidence": threshold})
    new_camera = camera.model_copy(
        update={"rules": [raised if r.name == rule.name else r for r in camera.rules]}
    )
    new_list = [new_camera if c.id == camera.id else c for c in cameras]
    return new_list, Suppression(
        camera.id, rule.name, getattr(rule, "zone", None), rule.min_confidence, threshold
    )

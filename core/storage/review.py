"""Police review of incidents: the status machine, assignment and notes.

Every change writes its audit entry in the same transaction as the change, so the
log never misses a change that happened nor records one that did not.

Transitions (action: from → to)::

    acknowledge:  new                              → acknowledged
    confirm:      new | acknowledged | false_alarm → confirmed
    false_alarm:  new | acknowledged | confirmed   → false_alarm   (needs a category)
    close:        confirmed | false_alarm          → closed
    reopen:       closed                           → acknowledged

Why these:
- ``new → confirmed | false_alarm`` directly: an officer who watches the clip from
  the incident list has decided; making them click "acknowledge" first would add a
  step and no information (the audit log already says who decided, when).
- A verdict may be corrected (confirmed ↔ false_alarm) until the incident is closed.
- Only a verdict can be closed, so a closed incident always says what it was (a
  closed false alarm keeps its category): the false-alarm statistics rely on it.
- ``closed`` is final except ``reopen``, which goes back to ``acknowledged`` and
  clears the false-alarm category: the incident is to be decided again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast, get_args

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import Session

from core.errors import CommuneVisionError
from core.storage.audit import Change, record
from core.storage.models import IncidentNoteRow, IncidentRow, UserRow
from core.storage.users import normalize_username
from core.types import Incident, IncidentStatus

S = IncidentStatus

FalseAlarmCategory = Literal[
    "shadow",
    "animal",
    "weather",
    "vehicle_misclassified",
    "person_misclassified",
    "reflection",
    "camera_moved",
    "other",
]
FALSE_ALARM_CATEGORIES: tuple[str, ...] = get_args(FalseAlarmCategory)
NOTE_MAX_CHARS = 4000


class ReviewAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONFIRM = "confirm"
    FALSE_ALARM = "false_alarm"
    CLOSE = "close"
    REOPEN = "reopen"


# action -> (statuses it may start from, status it leads to); see the module docstring.
TRANSITIONS: dict[ReviewAction, tuple[frozenset[str], str]] = {
    ReviewAction.ACKNOWLEDGE: (frozenset({S.NEW.value}), S.ACKNOWLEDGED.value),
    ReviewAction.CONFIRM: (
        frozenset({S.NEW.value, S.ACKNOWLEDGED.value, S.FALSE_ALARM.value}),
        S.CONFIRMED.value,
    ),
    ReviewAction.FALSE_ALARM: (
        frozenset({S.NEW.value, S.ACKNOWLEDGED.value, S.CONFIRMED.value}),
        S.FALSE_ALARM.value,
    ),
    ReviewAction.CLOSE: (frozenset({S.CONFIRMED.value, S.FALSE_ALARM.value}), S.CLOSED.value),
    ReviewAction.REOPEN: (frozenset({S.CLOSED.value}), S.ACKNOWLEDGED.value),
}


class ReviewError(CommuneVisionError):
    """A review request that cannot be carried out; the message says what to do."""


class IncidentNotFoundError(ReviewError):
    def __init__(self, incident_id: str) -> None:
        super().__init__(f"incident {incident_id!r} not found")


class ReviewConflictError(ReviewError):
    """The incident's state does not allow the change (HTTP 409)."""


class ReviewInvalidError(ReviewError):
    """A field of the request is wrong (HTTP 422); ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    incident_id: str
    ts: float
    author: str
    text: str


def allowed_next(status: str) -> list[str]:
    """What an incident in ``status`` may become, e.g. for a client's buttons."""
    out = []
    for action, (sources, target) in TRANSITIONS.items():
        if status in sources:
            out.append(f"{target} (reopen)" if action is ReviewAction.REOPEN else target)
    return out


def transition_error(incident_id: str, current: str, action: ReviewAction) -> str:
    target = TRANSITIONS[action][1]
    allowed = ", ".join(allowed_next(current)) or "nothing"
    if current == target:
        return f"incident {incident_id!r} is already {current!r}; allowed: {allowed}"
    return f"cannot go from {current!r} to {target!r}; allowed: {allowed}"


def verdict(status: str, category: str | None) -> Literal["confirmed", "false_alarm"] | None:
    """The review's verdict, also for closed incidents (only verdicts can be closed,
    and a closed false alarm keeps its category)."""
    if status == S.FALSE_ALARM or (status == S.CLOSED and category is not None):
        return "false_alarm"
    if status in (S.CONFIRMED, S.CLOSED):
        return "confirmed"
    return None


def check_category(action: ReviewAction, category: str | None) -> None:
    choices = ", ".join(FALSE_ALARM_CATEGORIES)
    if action is ReviewAction.FALSE_ALARM:
        if category is None:
            raise ReviewInvalidError(
                "category", f"a false alarm needs a category, one of: {choices}"
            )
        if category not in FALSE_ALARM_CATEGORIES:
            raise ReviewInvalidError(
                "category", f"unknown category {category!r}; use one of: {choices}"
            )
    elif category is not None:
        raise ReviewInvalidError("category", "only a false_alarm takes a category; leave it out")


def check_note(text: str, field: str = "text") -> str:
    if not text.strip():
        raise ReviewInvalidError(field, "a note must not be blank")
    if len(text) > NOTE_MAX_CHARS:
        raise ReviewInvalidError(field, f"a note holds at most {NOTE_MAX_CHARS} characters")
    return text


def _add_note(session: Session, incident_id: str, text: str, actor: str, now: float) -> Note:
    row = IncidentNoteRow(incident_id=incident_id, ts=now, author=actor, text=text)
    session.add(row)
    session.flush()  # the note's id goes into the audit entry
    record(
        session,
        Change(
            actor, "incident.note", "incident", incident_id, None, {"note_id": row.id, "text": text}
        ),
        now,
    )
    return Note(row.id, incident_id, now, actor, text)


class ReviewStore:
    """Review changes by people through the API (not the pipeline's single writer)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def transition(
        self,
        incident_id: str,
        action: ReviewAction,
        actor: str,
        *,
        category: str | None = None,
        note: str | None = None,
        expected_status: str | None = None,
    ) -> Incident:
        check_category(action, category)
        if note is not None:
            check_note(note, "note")
        now = time.time()
        sources, target = TRANSITIONS[action]
        with Session(self._engine) as session, session.begin():
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise IncidentNotFoundError(incident_id)
            current = row.status
            if expected_status is not None and expected_status != current:
                raise ReviewConflictError(
                    f"incident {incident_id!r} is {current!r}, not the expected "
                    f"{expected_status!r}: someone changed it meanwhile; reload it and decide again"
                )
            if current not in sources:
                raise ReviewConflictError(transition_error(incident_id, current, action))
            before: dict[str, Any] = {"status": current}
            after: dict[str, Any] = {"status": target}
            values: dict[str, Any] = {"status": target, "updated_ts": now}
            # The category follows the verdict: set by false_alarm, kept by close (a
            # closed false alarm must still say what it was), cleared by anything else.
            new_category = {
                ReviewAction.FALSE_ALARM: category,
                ReviewAction.CLOSE: row.false_alarm_category,
            }.get(action)
            if new_category != row.false_alarm_category:
                values["false_alarm_category"] = new_category
                before["false_alarm_category"] = row.false_alarm_category
                after["false_alarm_category"] = new_category
            # Compare-and-set on the status: of two reviewers who read the same status,
            # only the first one's update matches; the second gets a conflict, not a
            # silent overwrite.
            result = cast(
                CursorResult[Any],
                session.execute(
                    update(IncidentRow)
                    .where(IncidentRow.id == incident_id, IncidentRow.status == current)
                    .values(**values)
                ),
            )
            if result.rowcount != 1:
                raise ReviewConflictError(
                    f"incident {incident_id!r} changed while it was being reviewed; "
                    "reload it and decide again"
                )
            record(
                session,
                Change(actor, f"incident.{action}", "incident", incident_id, before, after),
                now,
            )
            if note is not None:
                _add_note(session, incident_id, note, actor, now)
            session.refresh(row)
            return row.to_incident()

    def assign(self, incident_id: str, assignee: str | None, actor: str) -> Incident:
        """Assign to an active user's username, or unassign with None. Assigning to
        the current assignee changes nothing and records nothing."""
        now = time.time()
        if assignee is not None:
            assignee = normalize_username(assignee)  # usernames are stored lowercase
        with Session(self._engine) as session, session.begin():
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise IncidentNotFoundError(incident_id)
            if assignee is not None:
                user = session.scalars(select(UserRow).where(UserRow.username == assignee)).first()
                if user is None or not user.active:
                    raise ReviewInvalidError(
                        "assignee",
                        f"no active user {assignee!r}; give an existing, active username, "
                        "or null to unassign",
                    )
            if row.status == S.CLOSED:
                raise ReviewConflictError(
                    f"incident {incident_id!r} is closed; reopen it to assign it"
                )
            if row.assignee == assignee:
                return row.to_incident()
            record(
                session,
                Change(
                    actor,
                    "incident.assign",
                    "incident",
                    incident_id,
                    {"assignee": row.assignee},
                    {"assignee": assignee},
                ),
                now,
            )
            row.assignee = assignee
            row.updated_ts = now
            session.flush()
            return row.to_incident()

    def add_note(self, incident_id: str, text: str, actor: str) -> Note:
        """Notes are append-only; closed incidents take notes too (a case number
        often arrives after the review)."""
        check_note(text)
        with Session(self._engine) as session, session.begin():
            if session.get(IncidentRow, incident_id) is None:
                raise IncidentNotFoundError(incident_id)
            return _add_note(session, incident_id, text, actor, time.time())

    def notes(self, incident_id: str) -> list[Note]:
        """Oldest first."""
        with Session(self._engine) as session:
            if session.get(IncidentRow, incident_id) is None:
                raise IncidentNotFoundError(incident_id)
            rows = session.scalars(
                select(IncidentNoteRow)
                .where(IncidentNoteRow.incident_id == incident_id)
                .order_by(IncidentNoteRow.ts, IncidentNoteRow.id)
            )
            return [Note(r.id, r.incident_id, r.ts, r.author, r.text) for r in rows]

"""Review storage on a real SQLite database: the status machine, audit entries in the
same transaction, assignment, notes, and the false-positive arithmetic."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import CameraConfig
from core.storage.audit import AuditLog, AuditQuery, Change, camera_diff
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.feedback import next_threshold, suggest_threshold, suppress_like
from core.storage.migrate import upgrade
from core.storage.models import AuditRow, CameraConfigVersion, IncidentRow, UserRow
from core.storage.repository import IncidentRepository
from core.storage.review import (
    TRANSITIONS,
    IncidentNotFoundError,
    ReviewAction,
    ReviewConflictError,
    ReviewInvalidError,
    ReviewStore,
    verdict,
)
from core.types import Incident, IncidentStatus, new_incident_id

ACTOR = "user:anh"
STATUSES = [s.value for s in IncidentStatus]


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def store(engine: Engine) -> ReviewStore:
    return ReviewStore(engine)


def incident(
    engine: Engine,
    status: str = "new",
    category: str | None = None,
    peak: float = 0.8,
    rule: str = "yard-people",
    type_: str = "intrusion",
) -> Incident:
    start = time.time()
    inc = Incident(
        id=new_incident_id(start),
        camera_id="gate-1",
        rule=rule,
        type=type_,
        severity="high",
        labels=["person"],
        track_ids=[3],
        zone="yard",
        start_ts=start,
        end_ts=None,
        peak_score=peak,
        clip_start_ts=start - 5,
        clip_end_ts=None,
        status=status,
        false_alarm_category=category,
    )
    with Session(engine) as session, session.begin():
        session.add(IncidentRow.from_incident(inc))
    return inc


def audit_rows(engine: Engine, entity_id: str) -> list[AuditRow]:
    with Session(engine) as session:
        stmt = select(AuditRow).where(AuditRow.entity_id == entity_id).order_by(AuditRow.id)
        return list(session.scalars(stmt))


def add_user(engine: Engine, username: str, active: bool = True) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            UserRow(
                username=username,
                password_hash="not-used-here",
                role="police",
                active=active,
                created_ts=time.time(),
            )
        )


LEGAL = [
    (start, action) for action, (sources, _) in TRANSITIONS.items() for start in sorted(sources)
]
ILLEGAL = [
    (start, action)
    for action, (sources, _) in TRANSITIONS.items()
    for start in STATUSES
    if start not in sources
]


@pytest.mark.parametrize(("start", "action"), LEGAL)
def test_every_legal_transition_changes_status_and_is_audited(
    engine: Engine, store: ReviewStore, start: str, action: ReviewAction
) -> None:
    # A closed false alarm keeps its category: closed incidents here are closed false alarms.
    category = "shadow" if start in ("false_alarm", "closed") else None
    inc = incident(engine, start, category)
    given = "animal" if action is ReviewAction.FALSE_ALARM else None
    before_call = time.time()
    got = store.transition(inc.id, action, ACTOR, category=given, expected_status=start)
    target = TRANSITIONS[action][1]
    assert got.status == target
    assert got.updated_ts is not None and got.updated_ts >= before_call
    [entry] = audit_rows(engine, inc.id)
    assert (entry.actor, entry.action, entry.entity_type) == (
        ACTOR,
        f"incident.{action}",
        "incident",
    )
    assert entry.before is not None and entry.after is not None
    assert (entry.before["status"], entry.after["status"]) == (start, target)
    # The category follows the verdict: set by false_alarm, kept by close, cleared otherwise.
    expected_category = {"false_alarm": "animal", "closed": category}.get(target)
    assert got.false_alarm_category == expected_category


@pytest.mark.parametrize(("start", "action"), ILLEGAL)
def test_illegal_transitions_conflict_and_change_nothing(
    engine: Engine, store: ReviewStore, start: str, action: ReviewAction
) -> None:
    inc = incident(engine, start)
    given = "animal" if action is ReviewAction.FALSE_ALARM else None
    with pytest.raises(ReviewConflictError, match="allowed: ") as err:
        store.transition(inc.id, action, ACTOR, category=given)
    assert repr(start) in str(err.value)
    after = IncidentRepository(engine).get(inc.id)
    assert after is not None and after.status == start and after.updated_ts is None
    assert audit_rows(engine, inc.id) == []


def test_conflict_messages_name_the_allowed_statuses(engine: Engine, store: ReviewStore) -> None:
    new = incident(engine, "new")
    with pytest.raises(ReviewConflictError) as err:
        store.transition(new.id, ReviewAction.CLOSE, ACTOR)
    assert str(err.value) == (
        "cannot go from 'new' to 'closed'; allowed: acknowledged, confirmed, false_alarm"
    )
    closed = incident(engine, "closed")
    with pytest.raises(ReviewConflictError) as err:
        store.transition(closed.id, ReviewAction.CONFIRM, ACTOR)
    allowed = "allowed: acknowledged (reopen)"
    assert str(err.value) == f"cannot go from 'closed' to 'confirmed'; {allowed}"


def test_false_alarm_category_is_required_known_and_only_for_false_alarms(
    engine: Engine, store: ReviewStore
) -> None:
    inc = incident(engine)
    with pytest.raises(ReviewInvalidError, match=r"^category: a false alarm needs") as err:
        store.transition(inc.id, ReviewAction.FALSE_ALARM, ACTOR)
    assert err.value.field == "category" and "shadow" in str(err.value)
    with pytest.raises(ReviewInvalidError, match="unknown category 'ghost'"):
        store.transition(inc.id, ReviewAction.FALSE_ALARM, ACTOR, category="ghost")
    with pytest.raises(ReviewInvalidError, match="only a false_alarm takes a category"):
        store.transition(inc.id, ReviewAction.CONFIRM, ACTOR, category="shadow")
    assert audit_rows(engine, inc.id) == []


def test_expected_status_guards_against_a_stale_view(engine: Engine, store: ReviewStore) -> None:
    inc = incident(engine)
    store.transition(inc.id, ReviewAction.ACKNOWLEDGE, "user:a", expected_status="new")
    with pytest.raises(ReviewConflictError, match="not the expected 'new'"):
        store.transition(inc.id, ReviewAction.CONFIRM, "user:b", expected_status="new")
    assert [r.actor for r in audit_rows(engine, inc.id)] == ["user:a"]


def test_concurrent_reviewers_of_the_same_status_only_one_wins(
    engine: Engine, store: ReviewStore
) -> None:
    inc = incident(engine, "acknowledged")
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def review(i: int) -> None:
        action = ReviewAction.CONFIRM if i % 2 else ReviewAction.FALSE_ALARM
        category = None if i % 2 else "shadow"
        start.wait()
        try:
            store.transition(
                inc.id, action, f"user:{i}", category=category, expected_status="acknowledged"
            )
            outcomes.append("ok")
        except ReviewConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=review, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert len(audit_rows(engine, inc.id)) == 1


def test_note_with_a_transition_commits_with_it(engine: Engine, store: ReviewStore) -> None:
    inc = incident(engine)
    store.transition(inc.id, ReviewAction.CONFIRM, ACTOR, note="plate 29A-123.45")
    [note] = store.notes(inc.id)
    assert (note.author, note.text) == (ACTOR, "plate 29A-123.45")
    assert [r.action for r in audit_rows(engine, inc.id)] == ["incident.confirm", "incident.note"]
    with pytest.raises(ReviewInvalidError, match=r"^note: a note must not be blank"):
        store.transition(inc.id, ReviewAction.CLOSE, ACTOR, note="   ")
    after = IncidentRepository(engine).get(inc.id)
    assert after is not None and after.status == "confirmed"  # nothing half-done


def test_reopen_clears_the_false_alarm_category(engine: Engine, store: ReviewStore) -> None:
    inc = incident(engine, "closed", "weather")
    assert verdict("closed", "weather") == "false_alarm"
    got = store.transition(inc.id, ReviewAction.REOPEN, "user:admin")
    assert (got.status, got.false_alarm_category) == ("acknowledged", None)
    [entry] = audit_rows(engine, inc.id)
    assert entry.before == {"status": "closed", "false_alarm_category": "weather"}
    assert entry.after == {"status": "acknowledged", "false_alarm_category": None}
    assert verdict("acknowledged", None) is None and verdict("closed", None) == "confirmed"


def test_assign_needs_an_active_user_and_records_changes_only(
    engine: Engine, store: ReviewStore
) -> None:
    add_user(engine, "binh")
    add_user(engine, "retired", active=False)
    inc = incident(engine)
    for who in ("nobody", "retired"):
        with pytest.raises(ReviewInvalidError, match=f"^assignee: no active user '{who}'"):
            store.assign(inc.id, who, ACTOR)
    assert store.assign(inc.id, " Binh ", ACTOR).assignee == "binh"
    assert store.assign(inc.id, "binh", ACTOR).assignee == "binh"  # no change, no entry
    assert store.assign(inc.id, None, ACTOR).assignee is None
    entries = audit_rows(engine, inc.id)
    assert [(e.before, e.after) for e in entries] == [
        ({"assignee": None}, {"assignee": "binh"}),
        ({"assignee": "binh"}, {"assignee": None}),
    ]
    closed = incident(engine, "closed")
    with pytest.raises(ReviewConflictError, match="closed; reopen it"):
        store.assign(closed.id, "binh", ACTOR)
    with pytest.raises(IncidentNotFoundError):
        store.assign("ffff", "binh", ACTOR)


def test_notes_are_checked_and_kept_in_order(engine: Engine, store: ReviewStore) -> None:
    inc = incident(engine, "closed")
    with pytest.raises(ReviewInvalidError, match=r"^text: a note holds at most 4000"):
        store.add_note(inc.id, "x" * 4001, ACTOR)
    with pytest.raises(ReviewInvalidError, match=r"^text: a note must not be blank"):
        store.add_note(inc.id, "\n", ACTOR)
    first = store.add_note(inc.id, "x" * 4000, "user:a")
    second = store.add_note(inc.id, "case 2024/117", "user:b")
    assert [n.id for n in store.notes(inc.id)] == [first.id, second.id]
    assert [r.after for r in audit_rows(engine, inc.id)][1] == {
        "note_id": second.id,
        "text": "case 2024/117",
    }
    with pytest.raises(IncidentNotFoundError):
        store.notes("ffff")


def test_evidence_lock_is_audited_when_it_changes(engine: Engine) -> None:
    inc = incident(engine)
    repo = IncidentRepository(engine)
    repo.set_evidence_lock(inc.id, True, "user:a")
    repo.set_evidence_lock(inc.id, True, "user:b")  # already locked: nothing to record
    repo.set_evidence_lock(inc.id, False, "user:c")
    assert [(r.actor, r.action, r.after) for r in audit_rows(engine, inc.id)] == [
        ("user:a", "incident.evidence_lock", {"evidence_locked": True}),
        ("user:c", "incident.evidence_unlock", {"evidence_locked": False}),
    ]


def test_audit_search_filters_and_pages(engine: Engine, store: ReviewStore) -> None:
    a, b = incident(engine), incident(engine)
    store.transition(a.id, ReviewAction.ACKNOWLEDGE, "user:x")
    store.transition(b.id, ReviewAction.ACKNOWLEDGE, "user:y")
    store.transition(a.id, ReviewAction.CONFIRM, "user:y")
    log = AuditLog(engine)
    assert [e.action for e in log.search(AuditQuery(entity_id=a.id))] == [
        "incident.confirm",
        "incident.acknowledge",
    ]
    assert {e.entity_id for e in log.search(AuditQuery(actor="user:y"))} == {a.id, b.id}
    page1 = log.search(AuditQuery(limit=2))
    page2 = log.search(AuditQuery(limit=2, before_id=page1[-1].id))
    assert [e.id for e in page1 + page2] == sorted((e.id for e in page1 + page2), reverse=True)
    assert len(page1 + page2) == 3
    assert log.search(AuditQuery(since_ts=time.time() + 60)) == []
    assert [e.action for e in log.history("incident", a.id)] == [
        "incident.acknowledge",
        "incident.confirm",
    ]


CAMERA = CameraConfig.model_validate(
    {
        "id": "gate-1",
        "url": "rtsp://admin:s3cret@10.0.0.7/102",
        "zones": [{"name": "yard", "points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}],
        "rules": [
            {"type": "intrusion", "name": "yard-people", "zone": "yard"},
            {"type": "tamper", "name": "lens"},
        ],
    }
)


def test_config_version_and_its_audit_commit_together(engine: Engine) -> None:
    config = ConfigStore(engine)
    v1 = config.save([CAMERA], ACTOR, "one", audit=lambda v: [Change(ACTOR, "x", "c", str(v))])
    assert [(r.action, r.entity_id) for r in audit_rows(engine, str(v1))] == [("x", str(v1))]

    def failing(_version: int) -> list[Change]:
        raise RuntimeError("audit failed")

    with pytest.raises(RuntimeError):
        config.save([CAMERA], ACTOR, "two", audit=failing)
    with Session(engine) as session:
        assert session.scalars(select(CameraConfigVersion.id)).all() == [v1]


def test_camera_diff_shows_changed_fields_without_credentials() -> None:
    moved = CAMERA.model_copy(update={"url": "rtsp://admin:other@10.0.0.8/102", "name": "Gate"})
    before, after = camera_diff(CAMERA, moved)
    assert before == {"name": "", "url": "rtsp://***@10.0.0.7/102"}
    assert after == {"name": "Gate", "url": "rtsp://***@10.0.0.8/102"}
    created_before, created = camera_diff(None, CAMERA)
    assert created_before is None and created is not None
    assert "s3cret" not in repr(created)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.29, 0.30), (0.4, 0.41), (0.405, 0.41), (0.999, 1.0), (0.0, 0.01), (1.0, 1.0)],
)
def test_next_threshold_is_the_next_hundredth(score: float, expected: float) -> None:
    assert next_threshold(score) == expected


def test_suggested_threshold_by_hand() -> None:
    confirmed = [0.62, 0.7, 0.75, 0.8, 0.85, 0.9]
    false_alarms = [0.4, 0.45, 0.5, 0.55, 0.61, 0.66]
    # 0.62 removes 5 of 6 false alarms and keeps 6 of 6 confirmed; 0.67 would remove
    # all six but keep 5 of 6 confirmed (83 % < 95 %).
    assert suggest_threshold(confirmed, false_alarms) == (0.62, 5, 6)
    # Only 2 of 6 false alarms lie below every confirmed score: not the 50 % asked for.
    assert suggest_threshold([0.46, 0.5, 0.9], [0.4, 0.45, 0.7, 0.8, 0.85, 0.9]) is None
    assert suggest_threshold(confirmed, []) is None
    assert suggest_threshold([], [0.3, 0.5]) == (0.51, 2, 0)


def test_suppress_raises_the_rule_just_above_the_false_alarm(engine: Engine) -> None:
    inc = incident(engine, "false_alarm", "shadow", peak=0.62)
    cameras, plan = suppress_like(inc, [CAMERA])
    rule = next(r for r in cameras[0].rules if r.name == "yard-people")
    assert rule.min_confidence == 0.63 and plan.min_confidence_before == 0.35
    assert (plan.camera_id, plan.rule, plan.zone) == ("gate-1", "yard-people", "yard")
    assert cameras[0].rules[1] == CAMERA.rules[1]  # the other rule is untouched
    with pytest.raises(ReviewConflictError, match="nothing to raise"):
        suppress_like(inc, cameras)
    with pytest.raises(ReviewConflictError, match="not a false alarm; mark it"):
        suppress_like(incident(engine, "confirmed"), [CAMERA])
    tamper = incident(engine, "false_alarm", "other", rule="lens", type_="tamper")
    with pytest.raises(ReviewInvalidError, match=r"^incident: rule type 'tamper'"):
        suppress_like(tamper, [CAMERA])
    gone = incident(engine, "closed", "animal", rule="removed-rule")
    with pytest.raises(ReviewConflictError, match="'removed-rule' is no longer configured"):
        suppress_like(gone, [CAMERA])

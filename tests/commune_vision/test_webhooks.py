"""The webhook dispatcher against the real things: the single writer publishing to a
real Valkey, SQLite, and a real HTTP receiver on loopback. Only time is driven by
the test (an injected clock), so retries hours apart take no time."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing as mp
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from commune_vision import processes
from commune_vision.stopflag import StopFlag
from commune_vision.webhooks import HttpSender, WebhookDispatcher
from core.bus import EventBus
from core.config import AppConfig, StorageConfig
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.webhooks import Webhook, WebhookStore
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, IncidentUpdated, Severity, new_incident_id
from core.webhooks import (
    CURSOR_KEY,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)
from tests.webhook_receiver import Receiver, receiving

SECRET = "0123456789abcdef0123456789abcdef"
BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 3600.0)


class Clock:
    """The time the dispatcher schedules by; tests move it forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_incident(
    camera_id: str, type_: str = "intrusion", severity: Severity = "high"
) -> Incident:
    start = time.time()
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule=f"{camera_id}-{type_}",
        type=type_,
        severity=severity,
        labels=["person"],
        track_ids=[7],
        zone="yard",
        start_ts=start,
        end_ts=None,
        peak_score=0.8,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    # Computed here from the documented format, not with the code under test.
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def store(engine: Engine) -> WebhookStore:
    return WebhookStore(engine)


@pytest.fixture()
def writer(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[IncidentWriter]:
    bus = EventBus(valkey_url)
    yield IncidentWriter(engine, tmp_path / "media", bus)
    bus.close()


@pytest.fixture()
def valkey(valkey_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey_url)
    yield client
    client.close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture()
def clock() -> Clock:
    return Clock()


class Dispatchers:
    """Makes dispatchers sharing one saved stream position (a key of this test's own),
    as successive runs of the cv-webhooks process do."""

    def __init__(self, valkey: redis.Redis, store: WebhookStore, clock: Clock) -> None:
        self.key = f"test:webhooks:{uuid.uuid4().hex}"
        self._valkey, self._store, self._clock = valkey, store, clock
        self._made: list[tuple[WebhookDispatcher, HttpSender]] = []

    def __call__(self, backoff_s: tuple[float, ...] = BACKOFF_S) -> WebhookDispatcher:
        sender = HttpSender(timeout_s=5)
        dispatcher = WebhookDispatcher(
            self._store,
            self._valkey,
            sender,
            clock=self._clock,
            backoff_s=backoff_s,
            cursor_key=self.key,
        )
        self._made.append((dispatcher, sender))
        assert dispatcher.cursor  # loads the saved position, or starts at the stream's end
        return dispatcher

    def close(self) -> None:
        for dispatcher, sender in self._made:
            dispatcher.close()
            sender.close()
        self._valkey.delete(self.key)


@pytest.fixture()
def dispatchers(valkey: redis.Redis, store: WebhookStore, clock: Clock) -> Iterator[Dispatchers]:
    made = Dispatchers(valkey, store, clock)
    yield made
    made.close()


def add_hook(
    store: WebhookStore,
    url: str,
    camera_ids: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
    min_severity: str = "low",
    active: bool = True,
) -> Webhook:
    return store.create(
        name="test",
        url=url,
        secret=SECRET,
        camera_ids=camera_ids,
        types=types,
        min_severity=min_severity,
        active=active,
        actor="user:test",
    )


def settle(dispatcher: WebhookDispatcher) -> None:
    """One step (what was published is already on the stream), then every request
    answered and recorded."""
    dispatcher.step()
    dispatcher.collect(wait=True)


def test_matching_incident_reaches_the_receiver_signed(
    store: WebhookStore,
    writer: IncidentWriter,
    receiver: Receiver,
    dispatchers: Dispatchers,
    clock: Clock,
) -> None:
    hook = add_hook(store, receiver.url("/police"))
    dispatcher = dispatchers()
    incident = make_incident("school")
    writer.handle(IncidentOpened(incident, b""))
    settle(dispatcher)

    [got] = receiver.requests
    assert got.path == "/police"
    assert got.headers[SIGNATURE_HEADER] == expected_signature(got.body)
    assert got.headers[SIGNATURE_HEADER] != expected_signature(got.body, "another secret")
    assert abs(int(got.headers[TIMESTAMP_HEADER]) - clock.now) <= 1
    assert got.headers[EVENT_HEADER] == "opened"
    assert got.headers["Content-Type"] == "application/json"
    body = json.loads(got.body)
    assert body["event"] == "opened" and body["stream_id"]
    assert body["incident"]["id"] == incident.id
    assert body["incident"]["camera_id"] == "school" and body["incident"]["type"] == "intrusion"

    [delivery] = store.deliveries(hook.id)
    assert got.headers[DELIVERY_HEADER] == str(delivery.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.event == "opened" and delivery.incident_id == incident.id

    # The close of the same incident is a second event, delivered on its own.
    writer.handle(IncidentUpdated(incident.id, incident.start_ts + 9, 0.9, [7], True, None))
    settle(dispatcher)
    assert [json.loads(r.body)["event"] for r in receiver.requests] == ["opened", "closed"]


def test_failed_delivery_is_retried_on_the_backoff_schedule(
    store: WebhookStore,
    writer: IncidentWriter,
    receiver: Receiver,
    dispatchers: Dispatchers,
    clock: Clock,
) -> None:
    hook = add_hook(store, receiver.url())
    dispatcher = dispatchers()
    receiver.plan(500, 503)
    writer.handle(IncidentOpened(make_incident("market"), b""))
    settle(dispatcher)

    [first] = store.deliveries(hook.id)
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.next_attempt_ts == pytest.approx(clock.now + 5)

    clock.advance(4.9)  # not yet due
    settle(dispatcher)
    assert len(receiver.requests) == 1

    clock.advance(0.1)
    settle(dispatcher)
    [second] = store.deliveries(hook.id)
    assert (second.status, second.attempts, second.last_status_code) == ("pending", 2, 503)
    assert second.next_attempt_ts == pytest.approx(clock.now + 30)

    clock.advance(30)
    settle(dispatcher)
    [done] = store.deliveries(hook.id)
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 3, 200)
    assert done.delivered_ts == pytest.approx(clock.now)

    # Every attempt carried the same body, validly signed.
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert all(r.headers[SIGNATURE_HEADER] == expected_signature(r.body) for r in receiver.requests)


def test_unreachable_receiver_fails_after_the_last_retry(
    store: WebhookStore, writer: IncidentWriter, dispatchers: Dispatchers, clock: Clock
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = add_hook(store, f"http://127.0.0.1:{port}/hook")
    dispatcher = dispatchers(backoff_s=(1.0, 2.0))
    writer.handle(IncidentOpened(make_incident("gate-1"), b""))
    settle(dispatcher)
    for wait_s in (1.0, 2.0):
        [delivery] = store.deliveries(hook.id)
        assert delivery.status == "pending" and delivery.last_status_code is None
        assert delivery.last_error is not None and "Connect" in delivery.last_error
        clock.advance(wait_s)
        settle(dispatcher)
    [failed] = store.deliveries(hook.id)
    assert (failed.status, failed.attempts) == ("failed", 3)

    clock.advance(86400)  # failed is final
    settle(dispatcher)
    assert store.deliveries(hook.id)[0].attempts == 3


def test_only_matching_webhooks_get_an_incident(
    store: WebhookStore, writer: IncidentWriter, receiver: Receiver, dispatchers: Dispatchers
) -> None:
    school = add_hook(store, receiver.url("/school"), camera_ids=("school",))
    speeding = add_hook(store, receiver.url("/speeding"), types=("speeding",))
    high = add_hook(store, receiver.url("/high"), min_severity="high")
    paused = add_hook(store, receiver.url("/paused"), active=False)
    dispatcher = dispatchers()
    at_school = make_incident("school", "intrusion", "medium")
    speeder = make_incident("road-1", "speeding", "high")
    minor = make_incident("gate-1", "intrusion", "low")
    for incident in (at_school, speeder, minor):
        writer.handle(IncidentOpened(incident, b""))
    settle(dispatcher)

    def got(path: str) -> list[str]:
        return [json.loads(r.body)["incident"]["id"] for r in receiver.to(path)]

    assert got("/school") == [at_school.id]
    assert got("/speeding") == [speeder.id]
    assert got("/high") == [speeder.id]
    assert got("/paused") == []
    assert len(receiver.requests) == 3  # the low one at the gate went nowhere
    assert [d.incident_id for d in store.deliveries(school.id)] == [at_school.id]
    assert [d.incident_id for d in store.deliveries(speeding.id)] == [speeder.id]
    assert [d.incident_id for d in store.deliveries(high.id)] == [speeder.id]
    assert store.deliveries(paused.id) == []


def test_restart_neither_loses_nor_repeats_deliveries(
    store: WebhookStore,
    writer: IncidentWriter,
    receiver: Receiver,
    dispatchers: Dispatchers,
    valkey: redis.Redis,
) -> None:
    hook = add_hook(store, receiver.url())
    first = dispatchers()
    start = first.cursor
    before = make_incident("hall")
    writer.handle(IncidentOpened(before, b""))
    settle(first)
    first.close()

    while_down = make_incident("hall")  # published while cv-webhooks is not running
    writer.handle(IncidentOpened(while_down, b""))
    settle(dispatchers())
    assert [json.loads(r.body)["incident"]["id"] for r in receiver.requests] == [
        before.id,
        while_down.id,
    ]

    # A crash after the deliveries were committed but before the position was saved:
    # the next run reads both entries again and must not deliver them again.
    valkey.set(dispatchers.key, start)
    again = dispatchers()
    assert again.cursor == start
    assert again.follow() == 2
    again.send_due()
    again.collect(wait=True)
    assert len(receiver.requests) == 2
    assert len(store.deliveries(hook.id)) == 2


def test_cv_webhooks_process_delivers_and_stops_on_the_flag(
    tmp_path: Path,
    engine: Engine,
    store: WebhookStore,
    writer: IncidentWriter,
    receiver: Receiver,
    valkey: redis.Redis,
    valkey_url: str,
) -> None:
    """The child the supervisor starts: the real entry point in its own process."""
    hook = add_hook(store, receiver.url("/process"))
    config = AppConfig(storage=StorageConfig(data_dir=tmp_path, database_url=str(engine.url)))
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)
    valkey.delete(CURSOR_KEY)  # a first start: it begins at the end of the stream
    child = ctx.Process(
        target=processes.webhooks_main, args=(config, stop, valkey_url), name="cv-webhooks"
    )
    child.start()
    try:
        deadline = time.monotonic() + 30
        while not valkey.exists(CURSOR_KEY):
            assert child.is_alive() and time.monotonic() < deadline, "cv-webhooks did not start"
            time.sleep(0.1)
        incident = make_incident("hall")
        writer.handle(IncidentOpened(incident, b""))
        [got] = receiver.wait_for(1, timeout_s=15)
        assert json.loads(got.body)["incident"]["id"] == incident.id
        assert got.headers[SIGNATURE_HEADER] == expected_signature(got.body)
    finally:
        stop.set()
        child.join(timeout=15)
    assert child.exitcode == 0
    [delivery] = store.deliveries(hook.id)
    assert delivery.status == "delivered"

"""The ``cv-webhooks`` process: follows the incident stream and POSTs the events each
webhook wants to its receiver, retrying with backoff.

Why a process of its own rather than a thread in ``cv-store``: a receiver that is
slow or down means sockets waiting for their timeout and retries for hours. Here
that can never delay the single writer (which must never lose an incident) nor the
API, a crash here restarts only this, and it reads the same stream the console
reads, so the writer needs no change. It stops before the writer like every
producer; what is published after it stopped is read when it starts again.

A restart neither loses nor repeats a delivery:
- the stream position (``CURSOR_KEY`` in Valkey) is saved only after the
  deliveries made from the entries read are committed; entries read again after a
  crash between the two make no second delivery (``WebhookStore.enqueue`` is
  idempotent per webhook and entry);
- deliveries are rows, so pending retries survive; only a request cut off by the
  crash itself is sent again (at least once: the ``X-CommuneVision-Delivery``
  header lets a receiver drop the repeat).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from typing import Protocol, cast

import httpx
import redis
from sqlalchemy.exc import SQLAlchemyError

from core.bus import INCIDENT_STREAM
from core.redact import redact_url
from core.storage.db import make_engine
from core.storage.webhooks import WebhookStore
from core.types import StopSignal
from core.webhooks import (
    CURSOR_KEY,
    DEFAULT_BACKOFF_S,
    StreamEntry,
    body_bytes,
    delivery_headers,
)

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
READ_BLOCK_MS = 500  # how long one step waits for new entries: also the pace of retries
READ_COUNT = 100
ERROR_PAUSE_S = 2.0
KEEP_FINISHED_S = 30 * 86400.0  # delivered/failed rows are history for a month
PRUNE_EVERY_S = 3600.0

# redis-py's stream replies, with decode_responses off.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class SendError(Exception):
    """The request got no HTTP answer: refused, timed out, TLS, DNS …"""


class Sender(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """The receiver's status code; SendError when there is none."""
        ...


class HttpSender:
    """POST with a timeout. Redirects are not followed: a webhook's URL is set by an
    admin, and a redirect would move a signed body somewhere nobody chose."""

    def __init__(self, timeout_s: float = SEND_TIMEOUT_S) -> None:
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            response = self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)) from exc
        return response.status_code

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None


def _decode(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry | None:
    try:
        incident = json.loads(fields[b"data"])
        kind = fields[b"kind"].decode()
    except (KeyError, ValueError) as exc:
        log.warning("stream entry %s skipped: %s", entry_id.decode(), exc)
        return None
    if not isinstance(incident, dict):
        log.warning("stream entry %s skipped: not an incident", entry_id.decode())
        return None
    return StreamEntry(entry_id.decode(), kind, incident)


class WebhookDispatcher:
    """One step: record finished requests, turn new stream entries into deliveries,
    start the requests that are due. Requests run on a small thread pool, so one
    slow receiver does not hold up the others or the reading of the stream.

    ``clock`` gives the time deliveries are scheduled by (injected by tests).
    """

    def __init__(
        self,
        store: WebhookStore,
        client: redis.Redis,
        sender: Sender,
        *,
        clock: Callable[[], float] = time.time,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        workers: int = 4,
        cursor_key: str = CURSOR_KEY,
        stream: str = INCIDENT_STREAM,
    ) -> None:
        self._store = store
        self._client = client
        self._sender = sender
        self._clock = clock
        self._backoff_s = tuple(backoff_s)
        self._cursor_key = cursor_key
        self._stream = stream
        self._cursor: str | None = None
        self._capacity = 2 * workers  # a few queued behind the running ones
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook-post")
        self._in_flight: dict[int, Future[_Outcome]] = {}

    @property
    def cursor(self) -> str:
        if self._cursor is None:
            self._cursor = self._load_cursor()
        return self._cursor

    def _load_cursor(self) -> str:
        saved = cast(bytes | None, self._client.get(self._cursor_key))
        if saved is not None:
            return saved.decode()
        # First start: begin at the end of the stream. Sending the backlog (up to
        # 100 000 old incidents) to receivers that were just set up helps nobody.
        latest = cast(list[tuple[bytes, object]], self._client.xrevrange(self._stream, count=1))
        cursor = latest[0][0].decode() if latest else "0-0"
        self._client.set(self._cursor_key, cursor)
        log.info("webhooks: no saved stream position; starting after %s", cursor)
        return cursor

    def follow(self, block_ms: int = 0) -> int:
        """Make the deliveries for entries published since the saved position, then
        save the new position. Returns the number of entries read."""
        reply = cast(
            StreamReply,
            self._client.xread(
                {self._stream: self.cursor},
                count=READ_COUNT,
                block=block_ms if block_ms > 0 else None,  # 0 would block forever
            ),
        )
        raw = [entry for _stream, entries in reply or [] for entry in entries]
        if not raw:
            return 0
        entries = [e for e in (_decode(i, f) for i, f in raw) if e is not None]
        made = self._store.enqueue(entries, self._clock())
        # Saved after the commit: a crash in between re-reads, and enqueue skips repeats.
        self._cursor = raw[-1][0].decode()
        self._client.set(self._cursor_key, self._cursor)
        if made:
            log.info("webhooks: %d deliveries for %d events", made, len(entries))
        return len(raw)

    def send_due(self) -> int:
        """Start the requests whose time has come; the number started."""
        free = self._capacity - len(self._in_flight)
        if free <= 0:
            return 0
        now = self._clock()
        due = self._store.due(now, free, exclude=self._in_flight.keys())
        for delivery, hook in due:
            body = body_bytes(delivery.payload)
            headers = delivery_headers(hook.secret, body, delivery.id, delivery.event, now)
            self._in_flight[delivery.id] = self._pool.submit(self._post, hook.url, body, headers)
        return len(due)

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Outcome:
        try:
            return _Outcome(self._sender.post(url, body, headers), None)
        except SendError as exc:
            return _Outcome(None, str(exc))
        except Exception as exc:  # a bug in a sender must not lose the delivery
            log.exception("webhook request to %s failed unexpectedly", redact_url(url))
            return _Outcome(None, f"{type(exc).__name__}: {exc}")

    def collect(self, wait: bool = False) -> int:
        """Record the outcome of finished requests (all of them with ``wait``)."""
        if wait and self._in_flight:
            wait_all(list(self._in_flight.values()))
        finished = [(i, f) for i, f in self._in_flight.items() if f.done()]
        for delivery_id, future in finished:
            outcome = future.result()
            delivery = self._store.record_attempt(
                delivery_id, outcome.status_code, outcome.error, self._clock(), self._backoff_s
            )
            del self._in_flight[delivery_id]
            if delivery is not None and delivery.status != "delivered":
                log.warning(
                    "webhook %d delivery %d attempt %d: %s; now %s",
                    delivery.webhook_id,
                    delivery_id,
                    delivery.attempts,
                    outcome.error or f"HTTP {outcome.status_code}",
                    delivery.status,
                )
        return len(finished)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def step(self, block_ms: int = 0) -> None:
        self.collect()
        self.follow(block_ms)
        self.send_due()

    def run(self, stop: StopSignal, block_ms: int = READ_BLOCK_MS) -> None:
        next_prune_ts = 0.0
        while not stop.is_set():
            try:
                self.step(block_ms)
                if self._clock() >= next_prune_ts:
                    next_prune_ts = self._clock() + PRUNE_EVERY_S
                    self._store.prune(self._clock() - KEEP_FINISHED_S)
            except (redis.RedisError, SQLAlchemyError) as exc:
                # Valkey or the DB restarting: wait and carry on; nothing is lost,
                # the position and the deliveries are where they were.
                log.warning("webhooks: %s; retrying in %.0f s", exc, ERROR_PAUSE_S)
                time.sleep(ERROR_PAUSE_S)
        # Record what was in flight, or a restart would send it a second time.
        self.collect(wait=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_webhooks(database_url: str, redis_url: str, stop: StopSignal) -> None:
    """The process body: real store, Valkey and HTTP, until ``stop``."""
    engine = make_engine(database_url)
    # The socket timeout must outlast a blocking XREAD.
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
    sender = HttpSender()
    dispatcher = WebhookDispatcher(WebhookStore(engine), client, sender)
    try:
        dispatcher.run(stop)
    finally:
        dispatcher.close()
        sender.close()
        client.close()
        engine.dispose()

"""Webhook rules as tables: which incident a filter takes, the retry schedule, the
URLs accepted, and the signature a receiver recomputes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from core.webhooks import (
    DEFAULT_BACKOFF_S,
    body_bytes,
    check_url,
    matches,
    next_attempt_ts,
    sign,
    verify,
)

SCHOOL_HIGH = {"camera_id": "school", "type": "intrusion", "severity": "high"}
GATE_LOW = {"camera_id": "gate-1", "type": "speeding", "severity": "low"}


@pytest.mark.parametrize(
    ("camera_ids", "types", "min_severity", "incident", "wanted"),
    [
        ((), (), "low", SCHOOL_HIGH, True),  # no filter: everything
        ((), (), "low", GATE_LOW, True),
        (("school",), (), "low", SCHOOL_HIGH, True),
        (("school",), (), "low", GATE_LOW, False),
        (("school", "gate-1"), (), "low", GATE_LOW, True),  # any of several
        ((), ("speeding",), "low", GATE_LOW, True),
        ((), ("speeding",), "low", SCHOOL_HIGH, False),
        ((), (), "medium", GATE_LOW, False),
        ((), (), "high", SCHOOL_HIGH, True),
        ((), (), "medium", {**SCHOOL_HIGH, "severity": "medium"}, True),
        (("school",), ("intrusion",), "high", SCHOOL_HIGH, True),  # all filters at once
        (("school",), ("speeding",), "low", SCHOOL_HIGH, False),
        ((), (), "low", {**SCHOOL_HIGH, "severity": "odd"}, True),  # unknown: the lowest
        ((), (), "medium", {**SCHOOL_HIGH, "severity": "odd"}, False),
    ],
)
def test_matching(
    camera_ids: tuple[str, ...],
    types: tuple[str, ...],
    min_severity: str,
    incident: dict[str, Any],
    wanted: bool,
) -> None:
    assert matches(camera_ids, types, min_severity, incident) is wanted


def test_retry_schedule_then_give_up() -> None:
    now = 1000.0
    waits = [next_attempt_ts(n, now, DEFAULT_BACKOFF_S) for n in range(1, 7)]
    assert waits == [1005.0, 1030.0, 1120.0, 1600.0, 4600.0, None]


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8080/in", "https://police.example/hooks?x=1", "HTTPS://h/"]
)
def test_http_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url", ["ftp://h/in", "file:///etc/passwd", "javascript:alert(1)", "http://", "h/in", ""]
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        check_url(url)


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = body_bytes({"incident": {"camera_id": "chợ", "id": "a"}, "event": "opened"})
    assert body == '{"event":"opened","incident":{"camera_id":"chợ","id":"a"}}'.encode()
    expected = hmac.new(b"secret-key-123456", body, hashlib.sha256).hexdigest()
    assert sign("secret-key-123456", body) == f"sha256={expected}"
    assert verify("secret-key-123456", body, f"sha256={expected}")
    assert not verify("another-key-123456", body, f"sha256={expected}")
    assert not verify("secret-key-123456", body + b" ", f"sha256={expected}")

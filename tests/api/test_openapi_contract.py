"""The committed OpenAPI document is the API's contract with the console and with
integrations: a change to routes or schemas must show up in its diff."""

from __future__ import annotations

import difflib
import json

from api.openapi import CONTRACT, render_openapi


def test_committed_openapi_matches_the_app() -> None:
    assert CONTRACT.is_file(), f"{CONTRACT} is missing: run `make openapi` and commit it"
    committed = CONTRACT.read_text(encoding="utf-8")
    current = render_openapi()
    if committed != current:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    current.splitlines(keepends=True),
                    "docs/openapi.json (committed)",
                    "create_app().openapi() (now)",
                )
            )[:80]
        )
        raise AssertionError(
            "the API changed but docs/openapi.json did not: run `make openapi`, review the "
            f"diff (is every change intended? breaking for clients?) and commit it.\n{diff}"
        )


def test_rendering_is_deterministic() -> None:
    first = render_openapi()
    assert first == render_openapi()
    paths = json.loads(first)["paths"]
    assert "/api/alerts/stream" in paths and "/readyz" in paths
    assert "/api/webhooks/{webhook_id}/deliveries" in paths

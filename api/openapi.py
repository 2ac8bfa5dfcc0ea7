"""The committed API contract, ``docs/openapi.json``, rendered from the app factory.

``make openapi`` (``python -m api.openapi``) rewrites it; ``tests/api/test_openapi_contract.py``
fails when routes or schemas changed without it. Sorted keys and a fixed layout make
the same app render the same bytes, so the diff shows only real changes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from api.app import ApiSettings, create_app

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "openapi.json"


def render_openapi() -> str:
    with tempfile.TemporaryDirectory() as media:
        # Placeholders: building the schema starts nothing and connects to nothing.
        settings = ApiSettings(
            database_url="sqlite://", redis_url="redis://127.0.0.1:6379/0", media_root=Path(media)
        )
        schema = create_app(settings).openapi()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else CONTRACT
    path.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {path}: review the diff and commit it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

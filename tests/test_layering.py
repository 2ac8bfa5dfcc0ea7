"""Dependencies point one way, down (GUIDE §2). Checked on the source, import by import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "models", "streams", "vision", "api", "commune_vision")

# package -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "core": {"models", "streams", "vision", "api", "commune_vision"},
    "models": {"streams", "vision", "api", "commune_vision"},
    "streams": {"vision", "api", "commune_vision"},
    "vision": {"streams", "api", "commune_vision"},
    "api": {"vision", "commune_vision"},
    "commune_vision": {"api"},  # the API is loaded by import string, never imported
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_points_up(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imports(path) & FORBIDDEN[package])}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_small(package: str) -> None:
    too_long = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in sorted((ROOT / package).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 500
    ]
    assert not too_long, too_long

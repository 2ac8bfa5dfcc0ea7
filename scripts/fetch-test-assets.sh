#!/usr/bin/env bash
# Ultralytics' bus.jpg (4 person + 1 bus) ships inside the ultralytics wheel on
# PyPI.  Take it from the wheel without installing ultralytics (and its torch).
set -euo pipefail
dest=${1:-.cache/test-assets}
[ -f "$dest/bus.jpg" ] && exit 0
pip=${PIP:-.venv/bin/pip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$pip" download --quiet --no-deps --only-binary=:all: "ultralytics==8.4.190" -d "$tmp"
mkdir -p "$dest"
"${PYTHON:-.venv/bin/python}" - "$tmp" "$dest" <<'PY'
import pathlib, sys, zipfile
tmp, dest = map(pathlib.Path, sys.argv[1:])
wheel = next(tmp.glob("ultralytics-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    (dest / "bus.jpg").write_bytes(zf.read("ultralytics/assets/bus.jpg"))
PY
echo "fetched $dest/bus.jpg"

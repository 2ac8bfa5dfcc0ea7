#!/usr/bin/env bash
# Install the Debian packages the service and its tests need, when running as
# root on Debian; otherwise print the exact command to run.  Idempotent: does
# nothing when everything is present.
set -euo pipefail

PACKAGES=(
  ffmpeg                          # ffprobe/ffmpeg: clip checks and decode ceilings
  libgl1 libglib2.0-0             # opencv-python's shared libraries
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp   # loopback RTSP server for tests
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  postgresql                      # a throwaway server for the PostgreSQL test runs (tests/pg.py)
  chromium                        # the browser the console tests drive (tests/console)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "apt-get failed; run by hand: $cmd" >&2
    exit 1
  fi
  rm -f "$log"
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Run as root:  $cmd" >&2
  exit 1
fi

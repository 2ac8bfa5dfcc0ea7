# Quick start: `make demo` runs the service on the embedded demo config,
# `make test` runs the test suite. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: gpu-test-venv lock install sysdeps demo test check lint typecheck test-assets bench bench-full bench-venv clean openapi soak

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@# The CPU install must never pull CUDA wheels.
	@if $(BIN)/pip list 2>/dev/null | grep -qiE '^(torch|nvidia-)'; then \
		echo "error: a CUDA/torch wheel was installed into the CPU venv" >&2; exit 1; fi
	touch $(STAMP)

# The Ultralytics (GPU-path) backend is tested on the CPU in its own venv, so the
# project's venv never carries torch. torch==2.13.0 is the CPU wheel pip takes from
# local disk (GUIDE §3); ultralytics goes in without its dependencies, which would
# pull a CUDA torch; torchvision is there only because ultralytics reads its
# version at import: the backend never imports it (that build does not load beside
# the CPU torch).
GPU_TEST_VENV := .venv-gpu
GPU_TEST_STAMP := $(GPU_TEST_VENV)/.installed

gpu-test-venv: $(GPU_TEST_STAMP)

$(GPU_TEST_STAMP): constraints.txt
	$(PYTHON) -m venv $(GPU_TEST_VENV)
	$(GPU_TEST_VENV)/bin/pip install --quiet --upgrade pip
	$(GPU_TEST_VENV)/bin/pip install --quiet torch==2.13.0
	$(GPU_TEST_VENV)/bin/pip install --quiet --no-deps ultralytics==8.4.190 'torchvision==0.28.*'
	$(GPU_TEST_VENV)/bin/pip install --quiet -c constraints.txt numpy opencv-python pyyaml pillow requests scipy psutil openvino
	touch $(GPU_TEST_STAMP)

sysdeps:
	./scripts/install-system-deps.sh

test-assets: $(STAMP)
	./scripts/fetch-test-assets.sh .cache/test-assets

# The demo listens on 127.0.0.1 only; its first admin gets a known password
# (override with COMMUNE_VISION_ADMIN_PASSWORD). Real installs use `users create-admin`.
demo: $(STAMP)
	COMMUNE_VISION_DEMO=1 COMMUNE_VISION_ADMIN_PASSWORD=$${COMMUNE_VISION_ADMIN_PASSWORD:-commune-demo-2026} \
	  $(BIN)/commune-vision run

test: $(STAMP) $(GPU_TEST_STAMP) test-assets
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The API contract: regenerate after changing routes or schemas, review the diff, commit.
openapi: $(STAMP)
	$(BIN)/python -m api.openapi docs/openapi.json

# The naive Ultralytics baseline and the plots run in their own venv: torch must
# never enter .venv. torch 2.13.0's CPU wheel cannot be used: Ultralytics 8.4
# reads torchvision's version on import and imports it in its warm-up, and no
# torchvision on PyPI loads beside the CPU torch ("torchvision::nms does not
# exist"). torch 2.14.1 + torchvision 0.29.1 (CUDA builds, run on CPU; ≈ 6 GB)
# work. openvino is pinned to the service's, so both run the same runtime.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_DEVICE ?= cpu

bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1 ultralytics==8.4.190 \
	  lap==0.5.13 matplotlib==3.11.2 $$(grep -E '^openvino(-telemetry)?==' constraints.txt)
	touch $(BENCH_STAMP)

# Short versions (≈ 15 min in all; benchmarks.streams ≈ 5 of them). BENCH_DEVICE=cuda:0
# runs the streams harness's detector and baseline on a GPU.
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.demo_cpu --measure-s 30
	$(BIN)/python -m benchmarks.decode --cameras 1 8 29 --window-s 15
	$(BIN)/python -m benchmarks.detector --window-s 10
	$(BIN)/python -m benchmarks.recording --cameras 29 --window-s 20
	$(BIN)/python -m benchmarks.search
	$(BIN)/python -m benchmarks.tracking
	$(BIN)/python -m benchmarks.streams --cameras 1 8 29 --window-s 20 --warmup-s 8 \
	  --ceiling-window-s 8 --recording-window-s 0 --bare-s 5 --baseline-cameras 1 2 \
	  --device $(BENCH_DEVICE)

# The long sweep of frames per second per stream (≈ 15–25 min on 2 cores; past 29
# cameras it goes on only while every stream keeps the 5 fps floor).
bench-full: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.streams --cameras 1 4 8 16 29 36 48 --window-s 60 \
	  --baseline-cameras 1 2 3 4 6 8 --device $(BENCH_DEVICE)

clean:
	rm -rf $(VENV) $(GPU_TEST_VENV) $(BENCH_VENV) .cache .mypy_cache .ruff_cache .pytest_cache data

# Pin what is installed now as the new constraints (after a deliberate upgrade + green make test).
lock: $(STAMP)
	(sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable) > constraints.new && mv constraints.new constraints.txt

# Accelerated soak (not in CI): N looped real-time RTSP cameras through the whole
# service for SOAK_MIN minutes; RSS, fds and threads per process over time, against
# the targets (RSS growth ≤ 5 % after warm-up, fds and threads flat). Results and the
# PNG go to .cache/soak/; figures in docs/reliability.md.
SOAK_CAMERAS ?= 29
SOAK_MIN ?= 60

soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --cameras $(SOAK_CAMERAS) --minutes $(SOAK_MIN) --verbose

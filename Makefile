# Quick start: `make demo` runs the service on the embedded demo config,
# `make test` runs the test suite. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lock install sysdeps demo test check lint typecheck test-assets bench clean openapi

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

sysdeps:
	./scripts/install-system-deps.sh

test-assets: $(STAMP)
	./scripts/fetch-test-assets.sh .cache/test-assets

# The demo listens on 127.0.0.1 only; its first admin gets a known password
# (override with COMMUNE_VISION_ADMIN_PASSWORD). Real installs use `users create-admin`.
demo: $(STAMP)
	COMMUNE_VISION_DEMO=1 COMMUNE_VISION_ADMIN_PASSWORD=$${COMMUNE_VISION_ADMIN_PASSWORD:-commune-demo-2026} \
	  $(BIN)/commune-vision run

test: $(STAMP) test-assets
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The API contract: regenerate after changing routes or schemas, review the diff, commit.
openapi: $(STAMP)
	$(BIN)/python -m api.openapi docs/openapi.json

bench: $(STAMP)
	$(BIN)/python -m benchmarks.demo_cpu --measure-s 30
	$(BIN)/python -m benchmarks.decode --cameras 1 8 29 --window-s 15
	$(BIN)/python -m benchmarks.detector --window-s 10
	$(BIN)/python -m benchmarks.recording --cameras 29 --window-s 20
	$(BIN)/python -m benchmarks.search
	$(BIN)/python -m benchmarks.tracking

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache data

# Pin what is installed now as the new constraints (after a deliberate upgrade + green make test).
lock: $(STAMP)
	(sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable) > constraints.new && mv constraints.new constraints.txt

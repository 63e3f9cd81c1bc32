# Everything installs itself: a clean clone needs only python3 (3.11+) and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck bench fuzz install clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every process (each
# gateway a test starts) would otherwise compile the dependencies again.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PYTHON=$(PYTHON) $(UV) sync --locked --quiet --compile-bytecode
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/steerway migrate
	$(BIN)/steerway serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy gateway providers rules telemetry admin_ui migrations benchmarks

test: lint typecheck
	$(BIN)/python -m compileall -q gateway providers rules telemetry admin_ui migrations
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m benchmarks

# A large fuzz run (the small one is part of `make test`): FUZZ_ARGS="--cases 50000 --seed 3".
fuzz: install
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

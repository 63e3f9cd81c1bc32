# Everything installs itself: a clean clone needs only python3 (3.11+) and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
# Test processes: most tests wait on gateways and databases, not on the CPU. A file's tests stay
# in one process, so a module's gateway is started once.
TEST_PROCESSES ?= 3

.PHONY: run test lint typecheck bench fuzz install clean chromium promtool haproxy poppler docs-images

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
	$(BIN)/mypy server gateway providers rules telemetry admin_ui migrations benchmarks

# The console's browser tests drive Debian's Chromium (never a browser Playwright downloads).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

# `steerway alerts export --prometheus` is checked with Debian's promtool.
promtool:
	@if ! command -v promtool >/dev/null; then \
		echo "installing Debian's prometheus (promtool) for the alert export's tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus; \
	fi

# The load balancer's config of the Docker Compose stack is checked with Debian's haproxy.
haproxy:
	@if ! command -v haproxy >/dev/null; then \
		echo "installing Debian's haproxy for the deployment's tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy; \
	fi

# The reports' PDFs are read back with Debian's poppler-utils (pdftotext, pdftoppm).
poppler:
	@if ! command -v pdftotext >/dev/null || ! command -v pdftoppm >/dev/null; then \
		echo "installing Debian's poppler-utils for the report PDF's tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils; \
	fi

test: lint typecheck chromium promtool haproxy poppler
	$(BIN)/python -m compileall -q server gateway providers rules telemetry admin_ui migrations
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadfile --durations=25

# The screenshots in docs/images/, taken by the console's browser tests.
docs-images: install chromium
	STEERWAY_DOCS_IMAGES=1 $(BIN)/pytest -q tests/console

bench: install
	$(BIN)/python -m benchmarks

# A large fuzz run (the small one is part of `make test`): FUZZ_ARGS="--cases 50000 --seed 3".
fuzz: install
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache test-artifacts

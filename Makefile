# Two commands for a newcomer: `make run` (the service on embedded defaults) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Pinned CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: install install-dev run test test-tools lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/stt run

# The browser and compose tests use Debian's chromium, chromium-driver and docker-compose (no
# browser download, no Docker engine needed). Installed once, only when missing; where apt is not
# usable those tests skip and say why.
TEST_TOOLS := chromium chromium-driver docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

test-tools:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! command -v docker-compose >/dev/null; then \
	  { $(SUDO) apt-get update -q \
	    && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEST_TOOLS); } \
	  || echo "warning: could not install $(TEST_TOOLS); browser and compose tests will skip"; \
	fi

test: install-dev test-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache

# medsafe: `make demo` and `make test` work on a fresh machine (they install what they need).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp

.PHONY: demo test install lint typecheck unit clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Debian packages: CJK fonts for plots/PDF, Chromium for the browser test, Pango for WeasyPrint.
system-deps:
	@bash scripts/system-deps.sh fonts-noto-cjk chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

$(STAMP)-dev: pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,embedded,hf]'
	touch $@

$(STAMP)-demo: pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

install: $(STAMP)-dev

demo: $(STAMP)-demo
	$(BIN)/medsafe demo

lint: $(STAMP)-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)-dev
	$(BIN)/mypy

unit: $(STAMP)-dev system-deps
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache

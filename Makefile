# medsafe: `make demo` and `make test` work on a fresh machine (they install what they need).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp
# llama-cpp-python (the embedded model's runtime) is built from source by scripts/llama-wheel.sh,
# for any x86-64 with AVX2 rather than this CPU's newest extensions (AMX/AVX-512 code that another
# machine or VM cannot run dies with "Illegal instruction"), and kept in a cache keyed by its
# flags. A CMAKE_ARGS already in the environment (e.g. a GPU build) is used as it is.
LLAMA_CPP_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)

.PHONY: demo test install lint typecheck unit clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Debian packages: CJK fonts for plots/PDF, Chromium for the browser test, Pango for WeasyPrint,
# PostgreSQL for the tests of the PostgreSQL store (they start their own server).
system-deps:
	@bash scripts/system-deps.sh fonts-noto-cjk chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 postgresql

# compileall: an editable install leaves src/ without bytecode, and where PYTHONDONTWRITEBYTECODE
# is set every `medsafe` command would compile it again at start-up.
# e5fast.c: pip install -e . compiles the guardian's e5 engine (pyproject: tool.setuptools.ext-modules)
$(STAMP)-dev: pyproject.toml $(BIN)/python scripts/llama-wheel.sh src/medsafe/guardian/engine/e5fast.c
	bash scripts/llama-wheel.sh $(BIN)/pip $(LLAMA_CPP_VERSION)
	$(BIN)/pip install --quiet -e '.[dev,embedded,hf,train,postgres,ray]'
	$(BIN)/python -m compileall -q src
	touch $@

$(STAMP)-demo: pyproject.toml $(BIN)/python scripts/llama-wheel.sh src/medsafe/guardian/engine/e5fast.c
	bash scripts/llama-wheel.sh $(BIN)/pip $(LLAMA_CPP_VERSION)
	$(BIN)/pip install --quiet -e '.[embedded]'
	$(BIN)/python -m compileall -q src
	touch $@

install: $(STAMP)-dev

demo: $(STAMP)-demo
	$(BIN)/medsafe demo

lint: $(STAMP)-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)-dev
	$(BIN)/mypy

unit: $(STAMP)-dev system-deps
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache src/medsafe/guardian/engine/_e5fast*.so

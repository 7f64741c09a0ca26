# oots — the two commands a newcomer needs are `make run` and `make test`.
# Every target installs what it needs into $(VENV) first, so a fresh clone works.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT   ?= 8000

.PHONY: help install sysdeps run test lint typecheck unit bench clean

help:
	@echo "make run      start the local OOTS demo network and print where to click"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make bench    run the benchmarks and print their figures"
	@echo "make lint     ruff only"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing oots and its development tools into $(VENV) ..."
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,postgres]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# System packages used by the browser and interop tests (chromium, Apache Santuario, xmlsec1).
sysdeps:
	@scripts/sysdeps.sh

run: $(STAMP)
	$(BIN)/oots demo --base-port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser and not interop"

test: $(STAMP) sysdeps lint typecheck
	$(BIN)/pytest -q

# PostgreSQL figures use this server (a scratch database is created and dropped); unset it to skip them.
OOTS_BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: $(STAMP)
	OOTS_BENCH_POSTGRES_URL=$(OOTS_BENCH_POSTGRES_URL) $(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info src/*.egg-info

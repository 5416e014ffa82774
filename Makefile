# skipmodel — every target creates what it needs; nothing relies on hand-installed tools.
#
#   make demo      the main job end to end on built-in demo data (creates .venv if needed)
#   make test      the fast test suite (what CI runs)
#
# Point the chain at real MSSD files with RAW=path/to/files (tar.gz, folders, csv, csv.gz);
# without RAW the demo data is simulated.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
BIN       := $(VENV)/bin
RAW       ?=
STORE     ?= data/store
DEMO      ?= data/demo
SESSIONS  ?= 20000
SEED      ?= 1
FRACTION  ?= 1.0
RUNS      ?= runs
REPORTS   ?= reports

# Compiled-model caches live outside the repository and are reused across runs and tests.
export PYTENSOR_FLAGS ?= compiledir=$(HOME)/.cache/skipmodel/pytensor
export NUMBA_CACHE_DIR ?= $(HOME)/.cache/skipmodel/numba
export MPLBACKEND ?= Agg

STAMP := $(VENV)/.installed

.PHONY: help setup data sample explore cpdag demo fit report test test-slow lint bench sbc clean

help:
	@echo "make demo       simulate demo data -> ingest -> sample, explore, cpdag -> fit -> report"
	@echo "make fit        fit VARIANTS='$(VARIANTS)' to the store     make report  reports/models/index.html"
	@echo "make test       fast tests (creates .venv)        make test-slow  statistical recovery tests"
	@echo "make data       ingest RAW=... (or simulated demo data) into STORE=$(STORE)"
	@echo "make lint       ruff, mypy, import contracts      make bench      benchmarks -> reports/bench/"
	@echo "make sbc        simulation-based calibration of a small model -> reports/sbc/ (~40 min; SBC_REPS=$(SBC_REPS))"
	@echo "make clean      remove generated data, runs, reports and the venv"

# Find a Python >= 3.12: an explicit PYTHON=..., python3.13/3.12 on PATH, or pyenv's 3.12.1.
PYTHON_FOUND = $(shell \
  for c in "$(PYTHON)" python3.12 python3.13 python3; do \
    [ -n "$$c" ] && command -v $$c >/dev/null 2>&1 && \
    $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$c; exit 0; }; \
  done; \
  for v in 3.12.1 3.13.0; do \
    p=$$(PYENV_VERSION=$$v pyenv which python 2>/dev/null) && [ -x "$$p" ] && { echo "$$p"; exit 0; }; \
  done; \
  for p in $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do [ -x "$$p" ] && { echo "$$p"; exit 0; }; done)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON_FOUND)" ]; then \
	  echo "error: skipmodel needs Python >= 3.12 (PyMC 6 / ArviZ 1); none found." >&2; \
	  echo "       install one (e.g. 'pyenv install 3.12') or run 'make setup PYTHON=/path/to/python3.12'" >&2; \
	  exit 1; fi
	@echo "using $(PYTHON_FOUND)"
	@[ -x $(BIN)/python ] || $(PYTHON_FOUND) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,spark]'
	@touch $(STAMP)

setup: $(STAMP)

DEMO_DATA   := $(DEMO)/training_set.tar.gz
STORE_READY := $(STORE)/manifest.json
# A demo-sized store needs fewer buckets than the 100 that suit the full 2-billion-row release.
DEMO_BUCKETS ?= 20

$(DEMO_DATA): | $(STAMP)
	$(BIN)/skipmodel simulate --out $(DEMO) --sessions $(SESSIONS) --seed $(SEED)

ifeq ($(strip $(RAW)),)
$(STORE_READY): $(DEMO_DATA)
	$(BIN)/skipmodel ingest $(DEMO)/training_set.tar.gz $(DEMO)/track_features.tar.gz --store $(STORE) --buckets $(DEMO_BUCKETS)
data: $(STORE_READY)
else
# Real files: 'make data' always (re-)ingests (idempotent); other targets ingest only if no store.
data: $(STAMP)
	$(BIN)/skipmodel ingest $(RAW) --store $(STORE)
$(STORE_READY): | $(STAMP)
	$(BIN)/skipmodel ingest $(RAW) --store $(STORE)
endif

# Fit the shipped variants on the train split of a session sample, then report on the test split.
VARIANTS     ?= baseline seasonal markov full
FIT_FRACTION ?= 0.05
DRAWS        ?= 1000
TUNE         ?= 1000
CHAINS       ?= 4

$(RUNS)/%/posterior.nc: models/%.toml $(STORE_READY) | $(STAMP)
	$(BIN)/skipmodel fit --store $(STORE) --model $< --out $(RUNS)/$* --fraction $(FIT_FRACTION) \
	  --seed $(SEED) --draws $(DRAWS) --tune $(TUNE) --chains $(CHAINS) --log-likelihood

fit: $(foreach v,$(VARIANTS),$(RUNS)/$(v)/posterior.nc)

report: fit
	$(BIN)/skipmodel report $(addprefix $(RUNS)/,$(VARIANTS)) --out $(REPORTS)/models
	@echo "open $(REPORTS)/models/index.html"

sample: $(STORE_READY)
	$(BIN)/skipmodel sample --store $(STORE) --out data/sample.parquet --fraction $(FRACTION) --seed $(SEED)

explore: $(STORE_READY)
	$(BIN)/skipmodel explore --store $(STORE) --out $(REPORTS)/explore --fraction $(FRACTION) --seed $(SEED)

cpdag: $(STORE_READY)
	$(BIN)/skipmodel cpdag --store $(STORE) --out $(REPORTS)/cpdag --alpha 1e-10

demo: sample explore cpdag report

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,spark,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --out $(REPORTS)/bench

# Simulation-based calibration (Talts et al. 2018) of a small variant fitted by skipmodel's own
# fit entry: rank histograms and uniformity tests per parameter. Slow, so not in the test suites.
SBC_REPS ?= 100
sbc: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.sbc --out $(REPORTS)/sbc --reps $(SBC_REPS)

clean:
	rm -rf $(DEMO) $(STORE) data/sample.parquet $(RUNS) $(REPORTS)/bench $(REPORTS)/sbc $(REPORTS)/explore $(REPORTS)/cpdag $(REPORTS)/models $(VENV) .pytest_cache .ruff_cache .mypy_cache

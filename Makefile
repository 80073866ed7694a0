# The two commands: `make demo` and `make test`. Each creates .venv when missing and installs
# tfrec into it; nothing else is needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfrec-installed
# Developers and CI have the real MovieLens 100K beside the repo; users can point anywhere.
SHARED_DATA := $(abspath ../shared/data)
export TFREC_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/ml-100k/u.data),$(SHARED_DATA),)

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Two pytest-xdist workers, one test file at a time each (module fixtures stay in one process):
# the suite is mostly single-threaded Python (tracing, small fits), so one process left a core idle.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=15

demo: $(STAMP)
	$(BIN)/tfrec demo

bench: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/rating.py
	$(BIN)/python benchmarks/ranking.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Two commands for a fresh machine (see README): `make book` and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned here, in the install step: an unpinned torch would pull a multi-GB CUDA build.
TORCH_VERSION := 2.13.0
# Where pip finds torch. Empty: pip's configured index (on these machines a local CPU wheel). On a
# Linux machine with the public PyPI, `pip install torch==2.13.0` fetches the CUDA build (several
# GB); `make book TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes the CPU-only wheel.
TORCH_INDEX ?=
# pip byte-compiles what it installs one file at a time; compileall after it uses every core
# (measured on 2 cores, warm pip cache: 106 s -> 87 s). Without the .pyc files every process
# would compile what it imports again where PYTHONDONTWRITEBYTECODE is set (as on the project's
# machines): measured, CI about 3 minutes slower. A file that does not compile for this Python (torch
# ships a few written for 3.12) is skipped, as pip skips it, hence `|| true`.
PIP_FLAGS := --quiet --no-compile
# Training jobs: WORKERS processes (empty: one per core, or per GPU), or an existing Dask cluster.
WORKERS ?=
SCHEDULER ?= $(TOPOBOOK_SCHEDULER)
# `full` runs every chapter at its real size; `ci` is a small parameter set through every code path.
PROFILE ?= full

.PHONY: book test lint unit install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install $(PIP_FLAGS) -e ".[book,dev]"
	$(PY) -m compileall -q -j 0 $(VENV)/lib topobook >/dev/null 2>&1 || true
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (topobook)" >/dev/null
	touch $@

install: $(VENV)/.installed

## Execute every notebook with papermill and build the HTML book.
book: $(VENV)/.installed
	$(PY) book/build.py --profile $(PROFILE) $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER))

## Lint, unit tests, and every notebook executed (CI profile) with the book built from them.
## The unit tests run in parallel beside the book build (pytest-xdist; TEST_WORKERS=0: serial).
TEST_WORKERS ?= auto
test: $(VENV)/.installed
	$(PY) -m ruff check topobook tests benchmarks book
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS)) --durations=15

## Quick loop while developing: lint and unit tests, no notebooks.
unit: $(VENV)/.installed
	$(PY) -m ruff check topobook tests benchmarks book
	$(PY) -m pytest -m "not book"

clean:
	rm -rf build

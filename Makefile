# Two commands for a fresh machine (see README): `make book` and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned here, in the install step: an unpinned torch would pull a multi-GB CUDA build.
TORCH_VERSION := 2.13.0
# `full` runs every chapter at its real size; `ci` is a small parameter set through every code path.
PROFILE ?= full

.PHONY: book test lint unit install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[book,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (topobook)" >/dev/null
	touch $@

install: $(VENV)/.installed

## Execute every notebook with papermill and build the HTML book.
book: $(VENV)/.installed
	$(PY) book/build.py --profile $(PROFILE)

## Lint, unit tests, and every notebook executed (CI profile) with the book built from them.
test: $(VENV)/.installed
	$(PY) -m ruff check topobook tests benchmarks book
	$(PY) -m pytest

## Quick loop while developing: lint and unit tests, no notebooks.
unit: $(VENV)/.installed
	$(PY) -m ruff check topobook tests benchmarks book
	$(PY) -m pytest -m "not book"

clean:
	rm -rf build

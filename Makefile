# Two commands for a new user: `make demo` and `make test`.
# Each finds a Python >= 3.12 by itself, creates .venv, installs nwbstore and runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# An interpreter >= 3.12: PYTHON=..., then python3.13/python3.12/python3 on PATH that
# really run, then pyenv's versions folder. Fails with a clear message if none exists.
FIND_PYTHON = $(shell PYTHON="$(PYTHON)" bash .ci/find-python)

.PHONY: help venv demo test lint docs bench clean

help:
	@echo "make demo   - set up .venv and convert + inspect the embedded example NWB file"
	@echo "make test   - set up .venv and run the whole test suite (with lint and docs)"

$(STAMP): pyproject.toml
	@set -e; py="$(FIND_PYTHON)"; \
	if [ -z "$$py" ]; then echo "error: no Python >= 3.12 found (tried PYTHON=, python3.13, python3.12, python3, pyenv versions). Install Python 3.12+ or run 'make PYTHON=/path/to/python3.12 ...'." >&2; exit 1; fi; \
	echo "using $$py ($$($$py --version))"; \
	if [ -x "$(PY)" ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then rm -rf $(VENV); fi; \
	[ -x "$(PY)" ] || $$py -m venv $(VENV); \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e ".[dev]"; \
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nwbstore demo

lint: $(STAMP)
	$(VENV)/bin/ruff check nwbstore tests examples benchmarks
	$(VENV)/bin/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $(VENV)/site

test: $(STAMP) lint docs
	$(PY) -m pytest -q -p no:cacheprovider -n auto --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/bench_convert.py --size-mb 750 3000 --repeat 3
	$(PY) benchmarks/bench_s3.py --latencies 0,0.025 --ephys-mb 200 --stream-gb 2 --repeat 3
	$(PY) benchmarks/bench_nwb_write.py --latencies 0,0.025 --series-gb 0.25 2 --repeat 3
	$(PY) benchmarks/bench_remote.py --size 200 --latencies 0 0.025 --repeat 3
	$(PY) benchmarks/bench_remote.py --size 200 --latencies 0.025 --bandwidth 100 --repeat 3

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache

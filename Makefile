# Set-up for a fresh machine: each target creates .venv when missing.
# torch is pinned to the CPU wheel 2.13.0: an unpinned torch resolves to a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: reproduce test test-slow bench venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(VENV)/bin/welavae reproduce

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check welavae tests scripts
	$(VENV)/bin/python -m pytest -q

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m slow

bench: $(STAMP)
	$(VENV)/bin/welavae bench --json bench.json

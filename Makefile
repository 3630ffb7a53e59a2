# Continuous training for Apache Airflow: the commands a user and CI run.
# Everything installs into .venv in the project root; nothing relies on what is installed by hand.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `airflow standalone` starts its parts as `airflow ...` subprocesses: the venv's bin must be on PATH.
export PATH := $(VENV)/bin:$(PATH)
# The browser test drives Debian's Chromium; Playwright never downloads a browser of its own.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install chromium run demo test test-unit stack-test fault-test lint format docs bench clean

help:
	@echo "make install   create .venv and install the pinned environment"
	@echo "make run       MLflow + Airflow standalone on SQLite with the demo pipeline (Ctrl-C stops)"
	@echo "make demo      headless: 1. input drift and its retrain; 2. labels, decay, the performance retrain"
	@echo "make test      lint + the docs build + every test (unit, DAG integrity, end to end, native stack, browser)"
	@echo "make stack-test  the native docker-compose stack and browser tests only (tests/stack)"
	@echo "make fault-test  killed workers, stopped MLflow, restarted PostgreSQL, concurrent retrains"
	@echo "make lint      ruff check and format check"
	@echo "make docs      build the documentation site strictly into .local/site (a broken link fails)"
	@echo "make bench     benchmarks, printed as ratios against a baseline run in the same process"

install: $(STAMP)

# Step lines and, on a terminal, pip's progress; in CI only the steps and pip's warnings.
$(STAMP): requirements.txt pyproject.toml
	@PYTHON=$(PYTHON) bash scripts/install.sh
	@touch $(STAMP)

# Debian's chromium package, once; a no-op when it is there. The emoji font draws the gate's
# check marks in the approval page's picture (docs/images/approval-page.png) instead of boxes.
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
chromium:
	@test -x $(CHROMIUM) -a -f $(EMOJI_FONT) || { \
	  echo "installing Debian's chromium and an emoji font for the browser tests"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium fonts-noto-color-emoji; }
	@test -x $(CHROMIUM)

run: install
	@bash scripts/run_local.sh

demo: install
	@bash scripts/demo.sh

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# --strict turns every warning into an error: a broken link or anchor, a page left out of the
# nav, a snippet whose file or section is gone. The site goes to .local/, which git ignores.
# NO_MKDOCS_2_WARNING silences the theme's banner about MkDocs 2, which says nothing of this site.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir $(CURDIR)/.local/site

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# One worker per core (tests/conftest.py keeps each module, and both native stacks, on one
# worker); the ten slowest tests are listed at the end of every run.
TEST_WORKERS ?= auto

test: install chromium lint docs
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=10

stack-test: install chromium
	$(PY) -m pytest tests/stack

fault-test: install
	$(PY) -m pytest tests/faults tests/integration/test_mlflow_outage.py tests/integration/test_promotion_safety.py

bench: install
	$(PY) bench/run.py

test-unit: install
	$(PY) -m pytest tests/unit tests/dags

clean:
	rm -rf .local .pytest_cache .ruff_cache test-artifacts

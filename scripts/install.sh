#!/usr/bin/env bash
# make install: .venv with the pinned environment (requirements.txt) and the project, editable.
# On a terminal pip shows each package it collects and its progress bars; elsewhere (CI, a log
# file) only these step lines and pip's warnings and errors are printed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
START=$SECONDS
say() { echo "install: $*"; }

if [ -t 1 ]; then
  PROGRESS=(--progress-bar on)
else
  PROGRESS=(--quiet)
fi
pip() { "$VENV/bin/python" -m pip "$@"; }

if [ -x "$VENV/bin/python" ]; then
  say "updating $VENV ($("$VENV/bin/python" --version))"
else
  say "creating $VENV with $PYTHON ($("$PYTHON" --version))"
  "$PYTHON" -m venv "$VENV"
fi
say "upgrading pip"
pip install --quiet --upgrade pip
PACKAGES="$(grep -cE '^[A-Za-z0-9]' "$ROOT/requirements.txt")"
say "installing $PACKAGES pinned packages from requirements.txt" \
  "(a few minutes on a first run)..."
pip install "${PROGRESS[@]}" -r "$ROOT/requirements.txt"
say "installing the project itself (editable: pip install --no-deps -e .)"
pip install --quiet --no-deps -e "$ROOT"
say "done in $((SECONDS - START)) s; the environment is $VENV"

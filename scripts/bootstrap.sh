#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs every package of the workspace in
# editable mode, pinned by constraints.txt. Safe to run again: it only installs
# what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY=$candidate; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet "uv==$(grep -E '^uv==' scripts/uv-version.txt | cut -d= -f3)"
fi

packages=()
for pyproject in libs/*/pyproject.toml services/*/pyproject.toml gateway/pyproject.toml; do
  [ -f "$pyproject" ] && packages+=(-e "$(dirname "$pyproject")")
done

echo "bootstrap: installing ${#packages[@]} workspace packages and dev tools"
.venv/bin/uv pip install --quiet --python .venv/bin/python \
  --constraint constraints.txt --build-constraint constraints.txt -r requirements-dev.txt "${packages[@]}"

# The local Ethereum node the blockchain service talks to in development and tests.
bash scripts/ensure-anvil.sh

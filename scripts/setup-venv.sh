#!/usr/bin/env bash
# Create .venv (Python 3.11) and install a requirements file into it; skipped when nothing changed.
# Usage: scripts/setup-venv.sh REQUIREMENTS_FILE   (PYTHON=... picks the interpreter; default python3.11)
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:?usage: scripts/setup-venv.sh REQUIREMENTS_FILE}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(basename "$req")"
# Reinstall when the stamp is missing or any requirements file (the one given or one it includes) is newer.
if [ ! -f "$stamp" ] || [ -n "$(find . -maxdepth 1 -name 'requirements*.txt' -newer "$stamp")" ]; then
  .venv/bin/python -m pip install -r "$req"
  touch "$stamp"
fi

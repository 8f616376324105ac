#!/usr/bin/env bash
# Prepares .venv-rasa: a separate virtualenv with rasa-sdk, for running Rasa action servers
# (adapters/rasa_handoff.py and the Rasa tests' action server). rasa-sdk pins versions that
# conflict with midtier's own .venv (e.g. pydantic), so it never goes there.
# Safe to run again: a stamp file skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${RASA_SDK_SPEC:-"rasa-sdk>=3.6,<4"}
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "rasa-sdk needs Python >= 3.9 (set PYTHON=/path/to/python3)" >&2
  exit 1
fi
[ -x .venv-rasa/bin/python ] || { echo "==> creating .venv-rasa"; "$python" -m venv .venv-rasa; }

stamp=".venv-rasa/.installed-$(printf '%s' "$spec" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing $spec into .venv-rasa"
  .venv-rasa/bin/pip install --disable-pip-version-check -q "$spec"
  .venv-rasa/bin/python -c 'import rasa_sdk, sys; print("rasa-sdk", rasa_sdk.__version__)'
  touch "$stamp"
fi

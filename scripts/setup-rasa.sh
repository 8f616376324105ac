#!/usr/bin/env bash
# Prepares .venv-rasa: a separate virtualenv with rasa-sdk only, for the Rasa tests' action
# server (tests/support/rasa_actions.py, which loads adapters/botside/rasa.py) and for the
# second mypy pass over that file in scripts/test.sh. It stays apart from .venv because no
# rasa-sdk (3.11 to 3.21) leaves midtier's server its newest pydantic and multidict: 3.17 on
# pin pydantic>=2.13.4,<2.14, and the sanic they need (22.12 for 3.11 to 3.16, 25.12 for 3.21)
# pins multidict<7 (see the rasa extra in pyproject.toml). Apart, it also shows that the
# action needs nothing of midtier's server. Safe to run again: a stamp file skips what is
# already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${RASA_SDK_SPEC:-"rasa-sdk>=3.11,<4"}  # the range of pyproject.toml's rasa extra
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

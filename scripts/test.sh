#!/usr/bin/env bash
# One command from a fresh checkout to the whole test suite: sets up .venv with the test
# tools and Chromium, then lint, type checks and every test (browser tests included).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy (strict, connector/ and adapters/)"
.venv/bin/mypy
# adapters/botside/rasa.py once more against the rasa-sdk it runs with (not in .venv).
.venv/bin/mypy --python-executable .venv-rasa/bin/python adapters/botside/rasa.py
echo "==> pytest"
exec .venv/bin/pytest "$@"

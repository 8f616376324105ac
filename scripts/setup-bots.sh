#!/usr/bin/env bash
# Prepares .venv-bots: the virtualenv in which the remote-bot tests run real Bot Framework
# bots as separate processes (tests/integration/test_remote_bots.py and
# tests/adapters/providers/test_botframework.py). It holds botbuilder's aiohttp hosting
# (CloudAdapter) and the Microsoft 365 Agents SDK's aiohttp hosting, kept apart from midtier's
# own .venv so their pins never move midtier's. Safe to run again: a stamp file skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "the test bots need Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

packages=(
  "botbuilder-integration-aiohttp==4.17.1"
  "microsoft-agents-hosting-aiohttp==1.9.0"
  "microsoft-agents-authentication-msal==1.9.0"
)
stamp=".venv-bots/.installed-$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0
[ -x .venv-bots/bin/python ] || { echo "==> creating .venv-bots"; "$python" -m venv .venv-bots; }
echo "==> installing the test bots' frameworks into .venv-bots"
.venv-bots/bin/pip install --disable-pip-version-check -q "${packages[@]}"
touch "$stamp"

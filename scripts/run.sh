#!/usr/bin/env bash
# One command from a fresh checkout to a running midtier on the embedded default
# (SQLite under ./data, no other service). Extra arguments go to `midtier run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/midtier run "$@"

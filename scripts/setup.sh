#!/usr/bin/env bash
# Prepares this checkout on a fresh machine: a virtualenv in .venv with midtier installed
# (editable). With --test also the test tools and Debian's Chromium for the browser tests.
# Safe to run again: it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "midtier needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || { echo "==> creating .venv"; "$python" -m venv .venv; }

extras=""
# The tests cover the accurate intent classifier too: its extra, embeddings, comes with them.
[ "$want_tests" = 1 ] && extras="[test,embeddings]"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extras:+-test}"
if [ ! -f "$stamp" ]; then
  if [ "$want_tests" = 1 ]; then
    # The embeddings extra pins torch==2.13.0. Its CPU build goes in first (a local version
    # label, so that no other build can match): else pip takes PyPI's default, CUDA build.
    # Where no configured index or wheel directory has the CPU build, point pip at PyTorch's
    # CPU wheel index with PIP_EXTRA_INDEX_URL.
    echo "==> installing torch 2.13.0 (CPU build) into .venv"
    .venv/bin/pip install --disable-pip-version-check -q --only-binary torch "torch==2.13.0+cpu"
  fi
  echo "==> installing midtier${extras} into .venv"
  .venv/bin/pip install --disable-pip-version-check -q -e ".${extras}"
  touch "$stamp"
fi
bash scripts/fetch-webchat.sh  # Bot Framework Web Chat's bundle, for the Direct Line page

if [ "$want_tests" = 1 ]; then
  # Real Bot Framework bots and a real rasa-sdk action server for the provider tests,
  # each in its own virtualenv so that their pins never move midtier's.
  bash scripts/setup-bots.sh
  bash scripts/setup-rasa.sh
fi

if [ "$want_tests" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  # Another apt-get or dpkg (unattended upgrades, a second checkout's setup) may hold the
  # package locks: wait for it, with a progress line, instead of failing.
  source scripts/apt-lock.sh
  apt_run $sudo_cmd apt-get update -qq
  apt_run $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout="$apt_lock_wait_s" chromium >/dev/null
fi

#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it.
#   scripts/test.sh [pytest arguments]
# Installs Debian's redis-server when it is missing and we are root; the tests
# start their own redis-server processes on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing redis-server (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "warning: redis-server is missing and cannot be installed here; Redis tests will be skipped (or fail in CI)" >&2
  fi
fi

# The browser tests drive Debian's chromium through Playwright (never `playwright install`);
# the browser client's unit tests run on Node's built-in test runner.
missing_packages=()
command -v chromium >/dev/null 2>&1 || missing_packages+=(chromium)
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing_packages[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
  else
    echo "warning: ${missing_packages[*]} missing and cannot be installed here; browser and JS tests will be skipped (or fail in CI)" >&2
  fi
fi

echo "== installing broadcast-cli and its test dependencies into .venv"
scripts/bootstrap.sh test

echo "== static checks"
.venv/bin/ruff check broadcast_cli tests
.venv/bin/mypy broadcast_cli

echo "== tests"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Install broadcast-cli into .venv and run the server (in memory unless --redis-url is given).
#   scripts/serve.sh [broadcast serve options]       e.g. scripts/serve.sh --demo --port 9000
# make serve ARGS='...' and make demo (which adds --demo) call it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/broadcast serve "$@"

#!/usr/bin/env bash
# Install broadcast-cli into .venv and run the server (in memory unless --redis-url is given).
#   scripts/serve.sh [broadcast serve options]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/broadcast serve "$@"

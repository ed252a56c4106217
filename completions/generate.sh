#!/usr/bin/env bash
# Regenerate the shell completion scripts from the CLI (tests/integration/cli/test_completions.py
# fails when they are out of date):   completions/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
broadcast="${BROADCAST:-../.venv/bin/broadcast}"
_BROADCAST_COMPLETE=source_bash "$broadcast" > broadcast.bash
_BROADCAST_COMPLETE=source_zsh "$broadcast" > _broadcast
_BROADCAST_COMPLETE=source_fish "$broadcast" > broadcast.fish
echo "completions/: broadcast.bash, _broadcast (zsh), broadcast.fish"

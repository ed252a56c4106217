#!/usr/bin/env bash
# Create a virtual environment and install broadcast-cli into it (editable), with what it needs.
#   scripts/bootstrap.sh                  .venv from the lock: requirements/runtime.txt
#   scripts/bootstrap.sh test             .venv from the lock: requirements/test.txt (runtime, tests, tools)
#   scripts/bootstrap.sh --latest test    .venv-latest with the newest releases pyproject.toml's ranges allow
# The lock (requirements/*.txt, made by scripts/lock.sh) pins every package, direct and
# transitive, pip and the build backend included, each with its hashes: two machines that run
# this get the same packages. See docs/testing.md, "Dependencies and the lock".
set -euo pipefail
cd "$(dirname "$0")/.."

latest=false
if [ "${1:-}" = "--latest" ]; then
  latest=true
  shift
fi
extras="${1:-}"
lock="requirements/${extras:-runtime}.txt"
if ! $latest && [ ! -f "$lock" ]; then
  echo "bootstrap: no lock $lock (the locks: $(cd requirements && ls ./*.txt | sed 's|^\./||' | tr '\n' ' '))" >&2
  exit 1
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "broadcast-cli needs Python >= 3.11 (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

venv=.venv
$latest && venv=.venv-latest
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)

if $latest; then
  # No lock: what a user of `pip install broadcast-cli` would get today, build backend included.
  "${pip[@]}" install --upgrade pip hatchling editables
  "${pip[@]}" install --upgrade --upgrade-strategy eager --no-build-isolation -e ".${extras:+[$extras]}"
else
  # Exactly the lock: every requirement pinned and hash-checked, pip refuses anything else.
  "${pip[@]}" install --require-hashes -r "$lock"
  # The package itself, with the locked build backend; its dependencies are all in the lock.
  "${pip[@]}" install --no-deps --no-build-isolation -e .
fi
if ! problems=$("$venv/bin/python" -m pip check 2>&1); then
  echo "bootstrap: $venv is inconsistent (is $lock out of date? run: make lock):" >&2
  echo "$problems" >&2
  exit 1
fi

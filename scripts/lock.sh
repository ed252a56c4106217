#!/usr/bin/env bash
# Write the lock: requirements/*.txt, every package pinned with its hashes (docs/testing.md).
#   scripts/lock.sh                           after editing pyproject.toml: resolve again, keep every other pin
#   scripts/lock.sh --upgrade                 every package to the newest release the ranges allow
#   scripts/lock.sh --upgrade-package redis   one package (repeatable)
# The locks resolve for every platform and every Python from 3.11 on (uv's universal mode).
# requirements/test.txt is resolved first; runtime.txt and bench.txt are constrained by it,
# so a package that two locks share has one version in both.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
tools=.venv-lock
pinned=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements/uv.txt)
if [ "$("$tools/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$pinned" ]; then
  [ -x "$tools/bin/python" ] || "$python" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/uv.txt
fi

compile() {  # compile OUTPUT INPUT... [uv options]: one lock
  local output="$1"
  shift
  "$tools/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "make lock" --output-file "$output" "$@"
}

compile requirements/test.txt pyproject.toml requirements/build.in --extra test "$@"
compile requirements/runtime.txt pyproject.toml requirements/build.in --constraint requirements/test.txt "$@"
compile requirements/bench.txt pyproject.toml requirements/build.in --extra bench --constraint requirements/test.txt "$@"
compile requirements/uv.txt requirements/uv.in "$@"

for lock in requirements/*.txt; do
  if grep -n '://' "$lock" >&2; then
    echo "lock: $lock names an index or a URL (above); a lock holds names, versions and hashes only" >&2
    exit 1
  fi
done
echo "lock: $(grep -c '^[A-Za-z0-9].*==' requirements/test.txt) packages in requirements/test.txt," \
  "$(grep -c '^[A-Za-z0-9].*==' requirements/runtime.txt) in runtime.txt; review with: git diff requirements/" >&2

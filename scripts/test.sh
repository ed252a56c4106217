#!/usr/bin/env bash
# Install what the chosen test layers need, then run them (scripts/layers.py).
#   scripts/test.sh                        every layer: static, unit, integration, e2e, package
#   scripts/test.sh unit                   one layer (or several: scripts/test.sh unit integration)
#   scripts/test.sh e2e -- -k browser      pytest arguments after --
#   scripts/test.sh --latest [LAYER…]      in .venv-latest, with the newest releases pyproject.toml
#                                          allows instead of the lock (make test-latest; not a gate)
# When run as root with apt-get, installs the Debian packages a layer needs and
# lacks: nodejs (unit and integration: the browser client's tests, under Node),
# npm (integration: the ws package, from tests/integration/js/package-lock.json),
# redis-server (integration, e2e; the tests start their own on free ports) and
# chromium (e2e, driven by Playwright; never `playwright install`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
bootstrap=(scripts/bootstrap.sh test)
if [ "${1:-}" = "--latest" ]; then
  shift
  venv=.venv-latest
  bootstrap=(scripts/bootstrap.sh --latest test)
fi

layers=()
for argument in "$@"; do
  [ "$argument" = "--" ] && break
  case "$argument" in -*) ;; *) layers+=("$argument") ;; esac
done
wants() {  # wants LAYER: true when LAYER is among the chosen layers (all of them by default)
  [ "${#layers[@]}" -eq 0 ] && return 0
  local layer
  for layer in "${layers[@]}"; do
    [ "$layer" = "$1" ] || [ "$layer" = all ] && return 0
  done
  return 1
}

missing=()
if { wants unit || wants integration; } && ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if wants integration && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if { wants integration || wants e2e; } && ! command -v redis-server >/dev/null 2>&1; then missing+=(redis-server); fi
if wants e2e && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} missing and cannot be installed here; the tests that need them are skipped (they fail in CI)" >&2
  fi
fi

if [ "$venv" = .venv ]; then
  echo "== installing broadcast-cli and its test dependencies into .venv (from requirements/test.txt)"
  # The package layer installs the built wheel with the same pins.
  export BROADCAST_LOCK=requirements/runtime.txt
else
  echo "== installing broadcast-cli and the newest releases of its test dependencies into $venv (no lock)"
  export BROADCAST_LOCK=
fi
"${bootstrap[@]}"

exec "$venv/bin/python" scripts/layers.py "$@"

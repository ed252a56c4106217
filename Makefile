# The two commands of the README, and one per test layer (docs/testing.md).
.PHONY: serve demo test test-unit test-integration test-e2e test-package test-latest lint lock lock-upgrade unit integration e2e

ARGS ?=

serve:  ## install into .venv from the lock and run the server in memory on 127.0.0.1:8000 (make serve ARGS='--port 9000')
	scripts/serve.sh $(ARGS)

demo:  ## the same, with the optimistic-sync demo at http://127.0.0.1:8000/demo (open it in two tabs)
	scripts/serve.sh --demo $(ARGS)

test:  ## install everything from the lock (Redis, Chromium, Node included) and run every layer, with the gates
	scripts/test.sh

test-unit:  ## no services: pytest tests/unit (no sockets, no processes) and node --test tests/js
	scripts/test.sh unit

test-integration:  ## real redis-server, real sockets, real server and CLI processes
	scripts/test.sh integration

test-e2e:  ## real Chromium, several server processes, Redis failures
	scripts/test.sh e2e

test-package:  ## wheel and sdist built, the wheel installed into a fresh venv and run
	scripts/test.sh package

lint:  ## ruff and mypy --strict
	scripts/test.sh static

test-latest:  ## not a gate: every layer in .venv-latest, against the newest releases pyproject.toml allows
	scripts/test.sh --latest

lock:  ## after editing pyproject.toml's dependencies: resolve requirements/*.txt again, keeping the other pins
	scripts/lock.sh

lock-upgrade:  ## every locked package to its newest allowed release (then: make test, git diff requirements/)
	scripts/lock.sh --upgrade

unit: test-unit
integration: test-integration
e2e: test-e2e

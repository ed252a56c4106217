# The two commands of the README, and one per test layer (docs/testing.md).
.PHONY: serve test test-unit test-integration test-e2e test-package lint unit integration e2e

serve:  ## install into .venv and run the server in memory on 127.0.0.1:8000
	scripts/serve.sh

test:  ## install everything (Redis, Chromium, Node included) and run every layer, with the coverage gates
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

unit: test-unit
integration: test-integration
e2e: test-e2e

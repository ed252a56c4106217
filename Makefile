# The two commands of the README, and a few shortcuts.
.PHONY: serve test unit integration e2e lint

serve:  ## install into .venv and run the server in memory on 127.0.0.1:8000
	scripts/serve.sh

test:  ## install everything (Redis included) and run the whole test suite
	scripts/test.sh

unit:
	.venv/bin/python -m pytest tests/unit

integration:
	.venv/bin/python -m pytest tests/integration

e2e:
	.venv/bin/python -m pytest tests/e2e

lint:
	.venv/bin/ruff check broadcast_cli tests && .venv/bin/mypy broadcast_cli

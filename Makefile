# Everyday tasks. A fresh machine needs only `make up` (run the platform) or
# `make test` (run every check CI runs); both install what is missing first.
.PHONY: up test install infra lint typecheck unit bench migrate clean

install:
	bash scripts/bootstrap.sh

infra:
	bash scripts/ensure-infra.sh

up: install infra
	.venv/bin/python scripts/run_platform.py

test: install infra
	bash scripts/test.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	.venv/bin/mypy libs/kit/src libs/poker/src gateway/src

# The HTTP and wallet benchmarks load the services with wrk (Debian's package, installed when root).
bench: install infra
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "bench: wrk is needed (as root: apt-get install wrk)" >&2; exit 1; }
	.venv/bin/python bench/run_all.py

migrate: install infra
	.venv/bin/tablium-player migrate

clean:
	rm -rf .venv .run .pytest_cache .mypy_cache .ruff_cache .hypothesis

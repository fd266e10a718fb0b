#!/usr/bin/env bash
# The whole suite: lint, types, then every test against the real Postgres,
# Redis and RabbitMQ. Fails when any step fails, and when pytest ran no test.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== ruff"
.venv/bin/ruff check . || exit 1
echo "== mypy (libs)"
.venv/bin/mypy libs/kit/src libs/poker/src gateway/src || exit 1

echo "== pytest"
.venv/bin/pytest libs services gateway tests "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"

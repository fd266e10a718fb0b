#!/usr/bin/env bash
# The whole suite: lint, types, then every test against the real Postgres,
# Redis and RabbitMQ. Fails when any step fails, and when pytest ran no test.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== ruff"
.venv/bin/ruff check . || exit 1
echo "== mypy (libs)"
.venv/bin/mypy libs/kit/src libs/poker/src gateway/src || exit 1

# Two workers (the machine's cores): the suite is mostly waiting on real
# services, and every test owns its databases, queues and ports, so it runs in
# parallel. TABLIUM_TEST_WORKERS=0 runs it serially (easier to read a failure).
workers="${TABLIUM_TEST_WORKERS:-2}"
echo "== pytest ($workers workers)"
.venv/bin/pytest -n "$workers" libs services gateway tests "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"

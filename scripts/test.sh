#!/usr/bin/env bash
# The whole test suite as one pytest run (one summary line; no test collected = failure):
#   tests/lint         yamllint, ansible-lint (production profile), ruff, syntax checks
#   tests/unit         plugins, filters, stand-ins, driver
#   tests/integration  the playbooks on a real local stack (site, validate, update, backup)
#   tests/e2e          the web panel in a real headless chromium
#   tests/molecule     every molecule scenario (roles/*/molecule, molecule/) on local/debian:12 and :13
# Usage: scripts/test.sh [lint|unit|integration|e2e|molecule] [extra pytest args]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/collections"
export PATH="$ROOT/.venv/bin:$PATH" GENAI_CACHE="$ROOT/.cache"
case "${1:-all}" in
  lint|unit|integration|e2e|molecule) paths=("tests/$1"); shift ;;
  all) paths=(tests/molecule tests/integration tests/lint tests/e2e tests/unit); [ $# -gt 0 ] && shift ;;  # longest first
  *) paths=() ;;
esac
# Side by side in GENAI_TEST_WORKERS workers (0: in this process): most of the suite waits on
# containers and playbooks, not on the CPU. Groups: tests/conftest.py. The 25 slowest tests are
# listed at the end: where the time goes.
exec pytest -p no:cacheprovider -ra --durations=25 -n "${GENAI_TEST_WORKERS:-3}" --dist loadscope --no-loadscope-reorder "${paths[@]}" "$@"

#!/usr/bin/env bash
# Mutation testing (mutmut) of plugins/module_utils and plugins/filter against the unit tests of
# tests/unit/plugins: `make mutate`, not part of `make test` (too slow). Prints the score per file
# and the surviving mutants.
#   scripts/mutate.sh [file ...]   (default: every file of both folders)
# a file is named without .py: `vllm` (module_utils first), `filter/proxy_rules`, `module_utils/specs`;
# `filter` or `module_utils` alone names the whole folder.
# mutmut names a mutant's module after its path, and the tests import the collection as
# ansible_collections.myia.genai_stack..., so the run happens in a copy laid out that way
# (.cache/mutate/ansible_collections/myia/genai_stack/), with real files instead of the symlink.
# MUTATE_WORK sets another work directory (two runs side by side), MUTATE_JOBS the mutmut children,
# MUTATE_TESTS the test files of tests/unit/plugins to run (default: all; a narrower set keeps a run
# going while another file there fails, at the cost of mutants only the others would kill).
#
# genai_stack/ (driver, CLI, panel) is not mutated. Even its small pure modules (secrets.py,
# locks.py, project.py) have no tests of their own: tests/unit/driver reaches them through Driver
# runs of real ansible-runner processes (test_driver_runs.py: 14 tests, 80 s; the five files about
# 70 tests), and every run masks secrets, takes host locks and resolves playbooks, so each of their
# several hundred mutants would rerun most of those tests: tens of hours, not a `make` target.
# Mutating them needs direct unit tests of those modules first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="${MUTATE_WORK:-$ROOT/.cache/mutate}"  # one per concurrent run
COPY="$WORK/ansible_collections/myia/genai_stack"
PKG=ansible_collections/myia/genai_stack/plugins
only=""
for name in "$@"; do
  case "$name" in
    filter | module_utils) rel="$name/*.py" ;;
    filter/* | module_utils/*) rel="$name.py" ;;
    *) rel="module_utils/$name.py"; [ -f "$ROOT/plugins/$rel" ] || rel="filter/$name.py" ;;
  esac
  [ -d "$ROOT/plugins/$name" ] || [ -f "$ROOT/plugins/$rel" ] || { echo "no plugins/$rel" >&2; exit 2; }
  only+=$'\n'"    $PKG/$rel"
done
[ -z "$only" ] || only="only_mutate =$only"
TESTS=ansible_collections/myia/genai_stack/tests/unit/plugins
selection="$TESTS"
if [ -n "${MUTATE_TESTS:-}" ]; then
  selection=""
  for t in $MUTATE_TESTS; do
    [ -f "$ROOT/tests/unit/plugins/$t" ] || { echo "no tests/unit/plugins/$t" >&2; exit 2; }
    selection+=$'\n'"    $TESTS/$t"
  done
fi
rm -rf "$WORK"
mkdir -p "$COPY/tests/unit"
cp -r "$ROOT/plugins" "$ROOT/roles" "$ROOT/group_vars" "$ROOT/inventories" "$ROOT/ansible.cfg" "$COPY/"
cp -r "$ROOT/tests/unit/plugins" "$ROOT/tests/unit/roles" "$COPY/tests/unit/"
cp -r "$ROOT/tests/standins" "$COPY/tests/"
cp "$ROOT/tests/unit/conftest.py" "$COPY/tests/unit/"
find "$COPY" -name __pycache__ -prune -exec rm -rf {} +

cat >"$WORK/setup.cfg" <<CFG
[mutmut]
source_paths = ansible_collections/myia/genai_stack/plugins/module_utils
    ansible_collections/myia/genai_stack/plugins/filter
also_copy = ansible_collections/myia/genai_stack/plugins
    ansible_collections/myia/genai_stack/roles
    ansible_collections/myia/genai_stack/group_vars
    ansible_collections/myia/genai_stack/inventories
    ansible_collections/myia/genai_stack/tests
    ansible_collections/myia/genai_stack/ansible.cfg
    pytest.ini
pytest_add_cli_args_test_selection = $selection
pytest_add_cli_args = -p no:cacheprovider -x -q
$only
CFG
printf '[pytest]\npythonpath = . ansible_collections/myia/genai_stack\n' >"$WORK/pytest.ini"
cd "$WORK"
export PATH="$ROOT/.venv/bin:$PATH"
# the tests that run ansible-playbook load the unmutated copy (mutants live in this process only),
# and the other collections (ansible.posix's json callback...) from the project's collections/
export ANSIBLE_COLLECTIONS_PATH="$WORK:$ROOT/collections"
mutmut run --max-children "${MUTATE_JOBS:-2}" >"$WORK/run.log" 2>&1 || { tail -40 "$WORK/run.log"; exit 1; }
"$ROOT/.venv/bin/python" "$ROOT/scripts/mutate_report.py" "$WORK"

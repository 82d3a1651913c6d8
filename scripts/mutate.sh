#!/usr/bin/env bash
# Mutation testing (mutmut) of plugins/module_utils against the unit tests: `make mutate`, not part
# of `make test` (too slow). Prints the score per file and the surviving mutants.
#   scripts/mutate.sh [module_utils file names without .py ...]   (default: all of them)
# mutmut names a mutant's module after its path, and the tests import the collection as
# ansible_collections.myia.genai_stack..., so the run happens in a copy laid out that way
# (.cache/mutate/ansible_collections/myia/genai_stack/), with real files instead of the symlink.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="${MUTATE_WORK:-$ROOT/.cache/mutate}"  # one per concurrent run
COPY="$WORK/ansible_collections/myia/genai_stack"
rm -rf "$WORK"
mkdir -p "$COPY/tests/unit"
cp -r "$ROOT/plugins" "$ROOT/roles" "$ROOT/group_vars" "$ROOT/inventories" "$ROOT/ansible.cfg" "$COPY/"
cp -r "$ROOT/tests/unit/plugins" "$ROOT/tests/unit/roles" "$COPY/tests/unit/"
cp -r "$ROOT/tests/standins" "$COPY/tests/"
cp "$ROOT/tests/unit/conftest.py" "$COPY/tests/unit/"
find "$COPY" -name __pycache__ -prune -exec rm -rf {} +

only=""
if [ $# -gt 0 ]; then
  only="only_mutate =$(printf '\n    ansible_collections/myia/genai_stack/plugins/module_utils/%s.py' "$@")"
fi
cat >"$WORK/setup.cfg" <<CFG
[mutmut]
source_paths = ansible_collections/myia/genai_stack/plugins/module_utils
also_copy = ansible_collections/myia/genai_stack/plugins
    ansible_collections/myia/genai_stack/roles
    ansible_collections/myia/genai_stack/group_vars
    ansible_collections/myia/genai_stack/inventories
    ansible_collections/myia/genai_stack/tests
    ansible_collections/myia/genai_stack/ansible.cfg
    pytest.ini
pytest_add_cli_args_test_selection = ansible_collections/myia/genai_stack/tests/unit/plugins
pytest_add_cli_args = -p no:cacheprovider -x -q
$only
CFG
printf '[pytest]\npythonpath = . ansible_collections/myia/genai_stack\n' >"$WORK/pytest.ini"
cd "$WORK"
export PATH="$ROOT/.venv/bin:$PATH"
# the tests that run ansible-playbook load the unmutated copy (mutants live in this process only)
export ANSIBLE_COLLECTIONS_PATH="$WORK"
mutmut run --max-children "${MUTATE_JOBS:-2}" >"$WORK/run.log" 2>&1 || { tail -40 "$WORK/run.log"; exit 1; }
"$ROOT/.venv/bin/python" "$ROOT/scripts/mutate_report.py" "$WORK"

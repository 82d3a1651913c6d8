"""Print the mutation score per file and the surviving mutants of a mutmut run (scripts/mutate.sh).

Files are named by folder: module_utils/vllm.py, filter/vllm_args.py.

Reads `mutmut results --all true` in the run's directory; a mutant marked equivalent in
scripts/mutants_equivalent.txt (``<mutant name>  <reason>``) is counted as killed and listed with
its reason.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "ansible_collections.myia.genai_stack.plugins."  # then module_utils. or filter.


def main(work: str) -> int:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"],
        cwd=work, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    equivalent: dict[str, str] = {}
    listed = ROOT / "scripts" / "mutants_equivalent.txt"
    if listed.exists():
        for line in listed.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.strip().partition(" ")
                equivalent[name] = reason.strip()
    per_file: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors: list[str] = []
    used: list[str] = []  # the equivalent mutants of this run
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name.startswith(PREFIX):
            continue
        folder, module = name[len(PREFIX) :].split(".", 2)[:2]
        module = f"{folder}/{module}"
        if name in equivalent and status == "survived":
            status = "killed"
            used.append(name)
        per_file[module][status] += 1
        if status in ("survived", "no tests"):
            survivors.append(f"{name} ({status})")
    total = collections.Counter[str]()
    # score: killed (and timed out) over every mutant but the skipped; a mutant no test runs
    # ("no tests") counts against it, like a survivor
    head = ("file", "mutants", "killed", "survived", "no tests", "score")
    print("{:<30} {:>8} {:>8} {:>9} {:>9} {:>7}".format(*head))

    def row(label: str, counts: collections.Counter[str]) -> None:
        n = sum(counts.values()) - counts["skipped"]
        killed = counts["killed"] + counts["timeout"]
        print(f"{label:<30} {n:>8} {killed:>8} {counts['survived']:>9} {counts['no tests']:>9} "
              f"{killed / max(1, n):>7.1%}")  # fmt: skip

    for module, counts in sorted(per_file.items()):
        total.update(counts)
        row(module + ".py", counts)
    row("all", total)
    if used:
        print("\nequivalent mutants (counted as killed):")
        for name in sorted(used):
            print(f"  {name}: {equivalent[name]}")
    print(f"\nmutants left ({len(survivors)}; `cd {work} && mutmut show <name>` shows one):")
    for name in survivors:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

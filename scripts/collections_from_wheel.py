"""Install the collections listed in requirements.yml out of the `ansible` wheel on PyPI.

Used where Ansible Galaxy is unreachable: the `ansible` distribution bundles every collection we
need. Only the listed collections are copied (a few MB), not the whole 470 MB package.
Usage: collections_from_wheel.py requirements.yml DEST
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

ANSIBLE_WHEEL = "ansible==12.3.0"  # bundles collections tested with ansible-core 2.19


def wanted(requirements: Path) -> list[str]:
    data = yaml.safe_load(requirements.read_text())
    return [c["name"] if isinstance(c, dict) else c for c in data.get("collections", [])]


def main(requirements: Path, dest: Path) -> int:
    names = wanted(requirements)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, ANSIBLE_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            members = zf.namelist()
            missing = []
            for name in names:
                namespace, collection = name.split(".")
                prefix = f"ansible_collections/{namespace}/{collection}/"
                files = [m for m in members if m.startswith(prefix)]
                if not files:
                    missing.append(name)
                    continue
                target = dest / "ansible_collections" / namespace / collection
                shutil.rmtree(target, ignore_errors=True)
                zf.extractall(tmp, files)
                shutil.copytree(Path(tmp) / prefix, target)
                print(f"installed {name} from {wheel.name}")
    if missing:
        print(f"not in {ANSIBLE_WHEEL}: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))

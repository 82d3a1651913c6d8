"""Every molecule scenario, on each distro of the matrix (MOLECULE_DISTROS, default 12 13): each
role's (roles/<role>/molecule/<scenario>) and the collection's own (molecule/<scenario>: the
operations playbooks on the whole stack), the latter listed under the name "collection".

One test per (role, scenario, distro): `molecule test` must pass (create, converge, idempotence,
verify, side effects, cleanup, destroy). Output is shown when a scenario fails.
MOLECULE_ROLES filters by role name ("collection" for the collection's scenarios).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTROS = os.environ.get("MOLECULE_DISTROS", "12 13").split()
ROLES = os.environ.get("MOLECULE_ROLES", "").split()
COLLECTION = "collection"
# the collection's scenarios first: the longest, they start first when tests run side by side
SCENARIOS = sorted(
    (COLLECTION, path.parent.name)
    for path in ROOT.glob("molecule/*/molecule.yml")
    if not ROLES or COLLECTION in ROLES
) + sorted(
    (path.parents[2].name, path.parent.name)
    for path in ROOT.glob("roles/*/molecule/*/molecule.yml")
    if not ROLES or path.parents[2].name in ROLES
)


#: scenarios run on one distro only unless MOLECULE_DISTROS asks otherwise, and why:
#: - the operations playbooks run on the controller (update, backup, restore, rotation); the
#:   instance only holds files and the containers of the shared docker;
#: - the service roles (vLLM, ComfyUI, Forge) only write files and drive the host's docker
#:   through its socket: what differs between distros is the instance's Python, and the
#:   production test (tests/integration/test_production_ssh.py) runs site.yml, which applies
#:   the three roles, validate and --check on Debian 12 and 13 hosts over SSH.
#: nginx and nvidia_runtime install and configure the distro's own packages: both distros.
ONE_DISTRO = {
    (COLLECTION, "operations"): "12",
    ("vllm_qwen3", "default"): "13",
    ("comfyui_qwen_auth", "default"): "12",
    ("forge_turbo", "default"): "13",
}
MATRIX = [
    (role, scenario, distro)
    for role, scenario in SCENARIOS
    for distro in DISTROS
    if "MOLECULE_DISTROS" in os.environ or ONE_DISTRO.get((role, scenario), distro) == distro
]


@pytest.mark.molecule
@pytest.mark.parametrize(
    ("role", "scenario", "distro"), MATRIX, ids=[f"{r}-{s}-{d}" for r, s, d in MATRIX]
)
def test_molecule(role: str, scenario: str, distro: str) -> None:
    env = {
        **os.environ,
        "MOLECULE_DISTRO": distro,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "GENAI_CACHE": str(ROOT / ".cache"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("ANSIBLE_CONFIG", None)  # molecule writes its own
    done = subprocess.run(
        [str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario],
        cwd=ROOT if role == COLLECTION else ROOT / "roles" / role,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-15000:]

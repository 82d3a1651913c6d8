"""backup.yml and restore.yml on two hosts at once, as an admin runs them without -l.

Two local hosts of a copy of the demo inventory, each with its own root holding configuration
files. Each host is restored from its own backup only; a backup of another host is refused on
every host before any host changes; files added after the backup are removed, and a restore
that fails half-way puts every file back as it was.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = ("host-a", "host-b")


class Bed:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.backups = tmp / "backups"
        self.inventory = tmp / "inventory"
        shutil.copytree(ROOT / "inventories" / "demo", self.inventory)
        hosts = {
            name: {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "genai_root_dir": str(self.root(name)),
            }
            for name in HOSTS
        }
        (self.inventory / "hosts.yml").write_text(
            yaml.safe_dump({"all": {"children": {"gpu_hosts": {"hosts": hosts}}}})
        )
        self.vault_pass = tmp / "vault-pass"
        self.vault_pass.write_text("a vault password for this test only\n")
        for name in HOSTS:
            self.write(name, "vllm/compose.yaml", f"{name} v1\n")
            self.write(name, "vllm/qwen3-micro.env", f"VLLM_API_KEY={name}-1\n", 0o600)
            self.write(name, "comfyui/PASSWORD", f"{name} hash\n", 0o600)

    def root(self, name: str) -> Path:
        return self.tmp / "roots" / name

    def write(self, name: str, rel: str, text: str, mode: int = 0o644) -> None:
        path = self.root(name) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def files(self, name: str) -> dict[str, tuple[str, int]]:
        """Every configuration file of a host: content and mode (rollout/restore copies aside)."""
        root = self.root(name)
        return {
            str(p.relative_to(root)): (p.read_text(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".previous" not in p.parts
        }

    def ansible(self, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_VAULT_PASSWORD_FILE": str(self.vault_pass),
        }
        cmd = [str(BIN / "ansible-playbook"), "-i", str(self.inventory), playbook,
               "-e", f"backup_root={self.backups}", *args]  # fmt: skip
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)

    def backup(self) -> str:
        done = self.ansible("playbooks/backup.yml")
        assert done.returncode == 0, done.stdout[-4000:]
        stamps = {name: sorted(p.name for p in (self.backups / name).iterdir()) for name in HOSTS}
        assert stamps["host-a"] == stamps["host-b"] and len(stamps["host-a"]) == 1, stamps
        return stamps["host-a"][0]


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    yield Bed(tmp_path)


def test_each_host_is_restored_from_its_own_backup(bed: Bed) -> None:
    before = {name: bed.files(name) for name in HOSTS}
    stamp = bed.backup()
    bed.write("host-a", "vllm/compose.yaml", "host-a v2\n")
    bed.write("host-a", "vllm/added-later.env", "ADDED=1\n", 0o600)
    (bed.root("host-b") / "vllm" / "qwen3-micro.env").unlink()
    bed.write("host-b", "vllm/compose.yaml", "host-b v2\n")

    done = bed.ansible("playbooks/restore.yml", "-e", f"backup_from={stamp}")
    assert done.returncode == 0, done.stdout[-4000:]
    for name in HOSTS:
        assert bed.files(name) == before[name], name
    # what host-a held before the restore is kept on the host
    snapshots = list((bed.root("host-a") / ".previous").glob("restore-*.tar.gz"))
    assert len(snapshots) == 1 and snapshots[0].stat().st_mode & 0o777 == 0o600
    with tarfile.open(snapshots[0]) as tar:
        kept = tar.extractfile("vllm/compose.yaml")
        assert kept is not None and kept.read() == b"host-a v2\n"
        assert "vllm/added-later.env" in tar.getnames()


def test_another_hosts_backup_is_refused_before_any_host_changes(bed: Bed) -> None:
    stamp = bed.backup()
    bed.write("host-a", "vllm/compose.yaml", "host-a v2\n")
    bed.write("host-b", "vllm/compose.yaml", "host-b v2\n")
    changed = {name: bed.files(name) for name in HOSTS}

    done = bed.ansible("playbooks/restore.yml", "-e", f"backup_from={bed.backups}/host-a/{stamp}")
    assert done.returncode != 0
    assert f"backup_from '{bed.backups}/host-a/{stamp}' is not a backup of host-b" in done.stdout
    for name in HOSTS:  # host-a's own backup was not restored either
        assert bed.files(name) == changed[name], name
        assert not (bed.root(name) / ".previous").exists()


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_restore_that_fails_half_way_puts_every_file_back(bed: Bed) -> None:
    bed.write("host-b", "vllm/compose.yaml", "host-b v2\n")
    before = bed.files("host-b")
    # a backup whose configs unpack (one file changed, one added), then whose secrets cannot:
    # tar refuses a member reaching out of the root
    broken = bed.backups / "host-b" / "20260101T000000Z"
    broken.mkdir(parents=True)
    (broken / "configs.tar.gz").write_bytes(
        tar_gz({"vllm/compose.yaml": b"from the backup\n", "vllm/added.json": b"{}\n"})
    )
    (bed.tmp / "secrets.tar.gz").write_bytes(tar_gz({"../escape.env": b"X=1\n"}))
    encrypted = subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(bed.vault_pass),
         "--output", str(broken / "secrets.tar.gz.vault"), str(bed.tmp / "secrets.tar.gz")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert encrypted.returncode == 0, encrypted.stderr

    done = bed.ansible("playbooks/restore.yml", "-l", "host-b", "-e", f"backup_from={broken.name}")
    assert done.returncode != 0
    assert "every configuration file was put back as it was before the restore" in done.stdout
    assert "Unpack the archives into the root directory" in done.stdout
    assert bed.files("host-b") == before
    assert not (bed.root("host-b").parent / "escape.env").exists()

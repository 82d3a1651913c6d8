"""Static checks, as tests so they share the suite's summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOKS = sorted(p.relative_to(ROOT) for p in [ROOT / "site.yml", *ROOT.glob("playbooks/*.yml")])


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_yamllint() -> None:
    result = run(str(BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile() -> None:
    result = run(str(BIN / "ansible-lint"), "--offline", "--profile", "production", "-q")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def test_ruff() -> None:
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_changelog(tmp_path: Path) -> None:
    """antsibull-changelog: the fragments (changelogs/fragments) and changelog.yaml lint clean,
    and CHANGELOG.md is what `antsibull-changelog generate` writes from changelog.yaml."""
    result = run(str(BIN / "antsibull-changelog"), "lint")
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    changes = str(ROOT / "changelogs" / "changelog.yaml")
    result = run(str(BIN / "antsibull-changelog"), "lint-changelog-yaml", changes)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    out = tmp_path / "CHANGELOG.md"
    result = run(str(BIN / "antsibull-changelog"), "generate", "--output", str(out),
                 "--output-format", "md")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_text() == (ROOT / "CHANGELOG.md").read_text(), "antsibull-changelog generate"


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=str)
def test_playbook_syntax(playbook: Path) -> None:
    result = run(str(BIN / "ansible-playbook"), "--syntax-check", str(playbook))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "plugin",
    sorted(
        {
            f"{kind}:{p.stem}"
            for kind in ("module", "filter")
            # a filter file with several filters documents each in its own <name>.yml
            for pattern in (("*.py",) if kind == "module" else ("*.py", "*.yml"))
            for p in (ROOT / "plugins" / ("modules" if kind == "module" else kind)).glob(pattern)
            if not p.name.startswith("_")
        }
    ),
)
def test_ansible_doc_renders(plugin: str) -> None:
    kind, name = plugin.split(":")
    result = run(str(BIN / "ansible-doc"), "-t", kind, f"myia.genai_stack.{name}")
    assert result.returncode == 0 and "EXAMPLES" in result.stdout, result.stdout + result.stderr

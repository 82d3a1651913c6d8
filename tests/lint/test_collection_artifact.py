"""The collection as others get it: the artifact `ansible-galaxy collection build` makes holds only
the collection, installs offline into a fresh path, and every plugin's documentation renders from
that copy; the execution environment (execution-environment.yml) carries it with its dependencies;
the manifests (galaxy.yml, requirements.yml, meta/runtime.yml, pyproject.toml, the Python locks
requirements.txt and requirements-dev.txt) agree with each other and with what the content uses."""

from __future__ import annotations

import filecmp
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY: dict[str, Any] = yaml.safe_load((ROOT / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
DEPENDENCIES: dict[str, str] = GALAXY["dependencies"]

# What the artifact may hold at its top level: the collection's content and docs, nothing of the
# project around it (tests, Python driver, venv, caches, secrets, reports, backups...).
SHIPPED = {
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "CHANGELOG.md",
    "changelogs",
    "meta",
    "plugins",
    "roles",
    "playbooks",
    "group_vars",  # the defaults playbooks/ loads (playbooks/group_vars links to it)
    "inventories",  # production.example only
}
NOT_SHIPPED = re.compile(
    r"(^|/)(molecule|tests|__pycache__|\.cache|\.venv|\.secrets|collections)(/|$)|\.pyc$"
    r"|^inventories/demo(/|$)"
)
# plugins/<dir> -> the ansible-doc type documenting it (an action plugin shares its module's doc)
DOC_TYPES = {"modules": "module", "action": "module", "filter": "filter"}
UNDOCUMENTED_DIRS = {"module_utils", "doc_fragments"}


# Without the checkout's ansible.cfg and collections path: they hold this collection already.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}


def run(*cmd: str | Path, cwd: Path = ROOT, env: Mapping[str, str] = CLEAN_ENV) -> str:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{cmd}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def source_plugins() -> list[tuple[str, str]]:
    """(ansible-doc type, name) of every plugin in the sources; a filter file holding several
    filters documents each in its own <name>.yml."""
    plugins = set()
    for folder in sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir()):
        if folder.name in UNDOCUMENTED_DIRS:
            continue
        assert folder.name in DOC_TYPES, f"plugins/{folder.name}: add its type to DOC_TYPES"
        patterns = ("*.py", "*.yml") if folder.name == "filter" else ("*.py",)
        plugins |= {
            (DOC_TYPES[folder.name], p.stem)
            for pattern in patterns
            for p in folder.glob(pattern)
            if not p.name.startswith("_")
        }
    return sorted(plugins)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact")
    run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ROOT)
    return out / TARBALL


@pytest.fixture(scope="module")
def installed(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh collections path holding the installed artifact, offline, without dependencies."""
    dest = tmp_path_factory.mktemp("installed")
    run(BIN / "ansible-galaxy", "collection", "install", artifact, "-p", dest, "--no-deps",
        "--offline", cwd=dest)  # fmt: skip
    assert (dest / "ansible_collections" / FQCN.replace(".", "/") / "MANIFEST.json").is_file()
    return dest


@pytest.fixture(scope="module")
def dependencies_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding only galaxy.yml's dependencies (from the project's collections/)."""
    dest = tmp_path_factory.mktemp("dependencies")
    for name in DEPENDENCIES:
        source = ROOT / "collections" / "ansible_collections" / name.replace(".", "/")
        assert source.is_dir(), f"{name} is not installed in collections/ (scripts/setup.sh)"
        link = dest / "ansible_collections" / name.replace(".", "/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)
    return dest


@pytest.fixture(scope="module")
def rendered_docs(installed: Path, dependencies_path: Path) -> dict[tuple[str, str], str]:
    """ansible-doc's text for every plugin of the sources, rendered from the installed copy
    only: no ansible.cfg, no checkout on the collections path."""
    env = CLEAN_ENV | {
        "ANSIBLE_COLLECTIONS_PATH": f"{installed}:{dependencies_path}",
        "ANSIBLE_NOCOLOR": "1",
    }
    docs: dict[tuple[str, str], str] = {}
    for kind in sorted({kind for kind, _ in source_plugins()}):
        names = [f"{FQCN}.{name}" for k, name in source_plugins() if k == kind]
        text = run(BIN / "ansible-doc", "-t", kind, *names, cwd=installed, env=env)
        for section in re.split(r"^(?=> )", text, flags=re.M):
            if m := re.match(rf"> \S+ {re.escape(FQCN)}\.(\w+) \((.+?)\)", section):
                docs[kind, m[1]] = section
    return docs


def test_artifact_holds_only_the_collection(artifact: Path) -> None:
    with tarfile.open(artifact) as tar:
        names = [m.name.removeprefix("./") for m in tar.getmembers()]
    assert sorted({n.split("/")[0] for n in names} - SHIPPED) == []
    assert [n for n in names if NOT_SHIPPED.search(n)] == []
    shipped = set(names)
    content = [
        p.relative_to(ROOT).as_posix()
        for folder in ("plugins", "roles", "playbooks", "meta")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and not NOT_SHIPPED.search(p.relative_to(ROOT).as_posix())
    ]
    assert [path for path in content if path not in shipped] == []
    assert "playbooks/group_vars" in shipped and "group_vars/all/genai.yml" in shipped


@pytest.mark.parametrize("plugin", source_plugins(), ids=lambda p: f"{p[0]}:{p[1]}")
def test_installed_plugin_doc_renders(
    plugin: tuple[str, str], rendered_docs: dict[tuple[str, str], str], installed: Path
) -> None:
    doc = rendered_docs.get(plugin)
    assert doc is not None, f"ansible-doc found no {plugin} in the installed artifact"
    header = doc.splitlines()[0]
    assert str(installed) in header, header  # from the installed copy, not the checkout
    assert "EXAMPLES" in doc, doc


def test_execution_environment_context(artifact: Path, tmp_path: Path) -> None:
    """`ansible-builder create` makes a build context holding the collection, its collection
    dependencies and its Python dependencies; the image build's own introspection finds the
    collection's Python needs in the installed artifact."""
    ee: dict[str, Any] = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    # a copy of the definition and the files it names, with the artifact where it expects it
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    for key in ("python", "system", "galaxy"):
        if isinstance(deps.get(key), str):
            (tmp_path / deps[key]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / deps[key], tmp_path / deps[key])
    (source,) = [f["src"] for f in ee["additional_build_files"] if f["src"].endswith(".tar.gz")]
    assert Path(source).name == TARBALL, "execution-environment.yml: the artifact's version"
    (tmp_path / source).parent.mkdir(parents=True)
    shutil.copy(artifact, tmp_path / source)

    context = tmp_path / "context"
    run(BIN / "ansible-builder", "create", "-f", tmp_path / "execution-environment.yml", "-c",
        context, "--output-filename", "Containerfile", cwd=tmp_path)  # fmt: skip
    build = context / "_build"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in containerfile

    galaxy = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    (own,) = [c for c in galaxy if c.get("type") == "file"]
    assert filecmp.cmp(build / own["name"], artifact, shallow=False)
    assert {c["name"]: c.get("version") for c in galaxy if c is not own} == DEPENDENCIES
    python = {Requirement(line).name for line in requirement_lines(build / "requirements.txt")}
    assert {"bcrypt", "requests", "pypsrp"} <= python
    assert (build / "bindep.txt").read_text().strip()

    # the galaxy stage installs the file from /build (the context's _build); the builder stage
    # runs introspect.py over the installed collections
    installed = tmp_path / "image-collections"
    run(BIN / "ansible-galaxy", "collection", "install", own["name"], "--no-deps", "--offline",
        "-p", installed, cwd=build)  # fmt: skip
    found = run(sys.executable, build / "scripts" / "introspect.py", "introspect", installed)
    from_collection = {
        Requirement(line.split("#")[0]).name
        for line in yaml.safe_load(found)["python"]
        if line.endswith(f"from collection {FQCN}")
    }
    assert from_collection == python


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def used_collections() -> set[str]:
    """Collections named by FQCN in the shipped content (roles without their molecule scenarios,
    playbooks, group_vars) and imported by the plugins."""
    installed = {
        f"{p.parent.name}.{p.name}"
        for p in (ROOT / "collections" / "ansible_collections").glob("*/*")
        if p.is_dir()
    }
    names: set[str] = set()
    for folder in ("roles", "playbooks", "group_vars"):
        for path in (ROOT / folder).rglob("*"):
            if (
                path.is_file()
                and path.suffix in {".yml", ".yaml", ".j2"}
                and "molecule" not in path.parts
            ):
                names |= set(re.findall(r"\b([a-z]\w*\.[a-z]\w*)\.[a-z]\w*", path.read_text()))
    for path in (ROOT / "plugins").rglob("*.py"):
        names |= set(re.findall(r"ansible_collections\.(\w+\.\w+)\.", path.read_text()))
    return names & installed - {FQCN}


def test_galaxy_dependencies_are_what_the_content_uses() -> None:
    assert sorted(DEPENDENCIES) == sorted(used_collections())
    requirements = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    listed = {c["name"]: c.get("version") for c in requirements}
    assert {name: listed.get(name) for name in DEPENDENCIES} == DEPENDENCIES


def test_requires_ansible_matches_pyproject_and_the_pin() -> None:
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (core,) = [
        Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("ansible-core")
    ]
    lower = [s.version for s in core.specifier if s.operator == ">="]
    required = [s.version for s in SpecifierSet(runtime["requires_ansible"]) if s.operator == ">="]
    assert [tuple(v.split(".")[:2]) for v in required] == [tuple(v.split(".")[:2]) for v in lower]
    pins = pinned()
    assert pins["ansible-core"] in SpecifierSet(runtime["requires_ansible"])
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())["dependencies"]
    for name in ("ansible_core", "ansible_runner"):
        requirement = Requirement(ee[name]["package_pip"])
        assert str(requirement.specifier) == f"=={pins[requirement.name]}", name


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


RUNTIME_LOCK = ROOT / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"
# What the project itself runs from the dev lock (make test, make mutate, scripts/setup.sh), each
# with the extras it needs; their dependencies make up the rest of the lock.
DEV_TOOLS = [
    "ansible-lint",  # tests/lint/test_lint.py
    "ansible-builder",  # execution-environment.yml (this file)
    "antsibull-changelog",  # changelogs/ (tests/lint/test_lint.py)
    "molecule",
    "molecule-plugins[docker]",  # the scenarios' docker driver
    "mutmut",  # make mutate
    "playwright",  # tests/e2e (the panel in a browser)
    "pytest",
    "pytest-testinfra",  # the molecule scenarios' verifiers
    "pytest-xdist",  # scripts/test.sh, tests/conftest.py
    "python-dotenv",  # the dotenv round-trip tests
    "httpx2",  # starlette's TestClient (the panel's tests)
    "ruff",  # tests/lint/test_lint.py
    "openai",  # the official SDK as the OpenAI gateway's client in its tests
    "aiohttp",  # the OpenAI gateway's program, run from its source in the tests and the bench
    "huggingface_hub",  # the real hub client: judges hf_fetch's cache and the hub stand-in
]


def pinned(lock: Path = RUNTIME_LOCK) -> dict[str, str]:
    pins = {}
    for line in requirement_lines(lock):
        if line.startswith("-r "):
            continue
        name, _, version = line.partition("==")
        pins[normalized(name)] = version
    return pins


def installed_closure(roots: list[Requirement]) -> set[str]:
    """The roots and everything they need, transitively, as the installed packages' metadata
    says (with the markers of this Python and the extras asked for)."""
    extras: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        name = normalized(requirement.name)
        wanted = {""} | set(requirement.extras)
        if name in extras and wanted <= extras[name]:
            continue
        extras[name] = extras.get(name, set()) | wanted
        for line in importlib.metadata.requires(name) or []:
            needed = Requirement(line)
            environments = [default_environment() | {"extra": e} for e in extras[name]]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in environments):
                todo.append(needed)
    return set(extras)


def declared() -> list[Requirement]:
    """pyproject's dependencies and its optional ones (the `windows` extra)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(d) for d in pyproject["dependencies"]] + [
        Requirement(d) for deps in pyproject.get("optional-dependencies", {}).values() for d in deps
    ]


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_python_locks_hold_plain_pins(lock: Path) -> None:
    """Plain pins only (no pip freeze leftovers); the dev lock includes the runtime lock."""
    text = lock.read_text()
    assert not re.search(r"(?im)^(# Editable|-e |.* @ )", text)
    lines = requirement_lines(lock)
    if lock == DEV_LOCK:
        assert lines[0] == "-r requirements.txt"
        lines = lines[1:]
    assert [line for line in lines if not re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", line)] == []
    assert len(lines) == len(pinned(lock)), "a package pinned twice"


def test_python_runtime_dependencies_are_declared_and_pinned() -> None:
    """pyproject declares what genai_stack needs; requirements.txt pins a version of each that
    satisfies it, and exactly their transitive dependencies besides (nothing of the tools)."""
    pins = pinned()
    for requirement in declared():
        name = normalized(requirement.name)
        assert name in pins, f"{requirement} is not pinned in requirements.txt"
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]} breaks {requirement}"
    assert sorted(pins) == sorted(installed_closure(declared()))


def test_python_dev_lock_holds_the_rest() -> None:
    """requirements-dev.txt pins the tools the project runs and what they need beyond the
    runtime lock; every pin is in exactly one of the two files, and nothing is pinned that
    nothing runs or needs (mypy and its stubs were: nothing ran them)."""
    runtime, dev = pinned(RUNTIME_LOCK), pinned(DEV_LOCK)
    assert sorted(set(runtime) & set(dev)) == []
    wanted = installed_closure(declared() + [Requirement(tool) for tool in DEV_TOOLS])
    assert sorted(wanted - set(runtime) - set(dev)) == [], "not pinned"
    assert sorted((set(runtime) | set(dev)) - wanted) == [], "pinned, but nothing runs or needs it"
    for name, version in (runtime | dev).items():
        assert importlib.metadata.version(name) == version, f"{name}: .venv differs from the lock"


# ansible-test bootstraps pip in its venvs with a get-pip script from ci-files.testing.ansible.com,
# unreachable here: this stand-in in its cache does the same with ensurepip and PyPI.
GET_PIP = """import subprocess, sys
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, capture_output=True)
subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)
"""
# Tests needing what this machine lacks: pslint needs PowerShell (pwsh, PSScriptAnalyzer).
SKIPPED_SANITY = ["pslint"]


def test_ansible_test_sanity(installed: Path) -> None:
    """`ansible-test sanity` on the installed artifact, each test in its own venv (no docker);
    tests/sanity/ignore-*.txt comes along. The venvs stay in $GENAI_CACHE/ansible-test."""
    import ansible_test

    home = Path(os.environ.get("GENAI_CACHE", ROOT / ".cache")) / "ansible-test"
    source = (
        Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    ).read_text()
    pip = re.search(r"pip='([\d.]+)'", source)
    assert pip, "ansible-test's pip version"
    cache = home / ".ansible" / "test" / "cache" / f"get_pip_{pip[1].replace('.', '_')}.py"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(GET_PIP)

    collection = installed / "ansible_collections" / FQCN.replace(".", "/")
    shutil.copytree(ROOT / "tests" / "sanity", collection / "tests" / "sanity", dirs_exist_ok=True)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    skip = [arg for test in SKIPPED_SANITY for arg in ("--skip-test", test)]
    run(BIN / "ansible-test", "sanity", "--venv", "--python", python, "--requirements",
        "--color", "no", *skip, cwd=collection, env=CLEAN_ENV | {"HOME": str(home)})  # fmt: skip

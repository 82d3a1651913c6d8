"""Where the Ansible project is, which playbooks it has, and where runs keep their state.

The repository root is both the Ansible project and the collection ``myia.genai_stack``: it holds
``site.yml``, ``ansible.cfg``, ``playbooks/`` and ``plugins/module_utils/`` (the service model, the
GPU plan and the HTTP checks, which the panel reuses instead of keeping a second copy).
"""

from __future__ import annotations

import configparser
import importlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

#: environment variables read when no explicit value is given
ENV_PROJECT = "GENAI_STACK_PROJECT"
ENV_STATE = "GENAI_STACK_STATE_DIR"

#: the collection, importable once ``collections/`` is on sys.path
COLLECTION_PACKAGE = "ansible_collections.myia.genai_stack"

#: CLI verbs and the playbook each one runs
ALIASES = {"deploy": "site", "rotate": "rotate_tokens"}


class ProjectError(RuntimeError):
    """The project or a playbook cannot be found."""


def _is_project(path: Path) -> bool:
    return (path / "site.yml").is_file() and (path / "ansible.cfg").is_file()


@dataclass
class Project:
    """The Ansible project (repository root) the driver runs playbooks of."""

    root: Path
    _modules: dict[str, ModuleType] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if not _is_project(self.root):
            raise ProjectError(
                f"{self.root} is not the genai_stack project (no site.yml/ansible.cfg)"
            )

    @classmethod
    def discover(cls, root: str | os.PathLike[str] | None = None) -> Project:
        """The project at ``root``, else ``$GENAI_STACK_PROJECT``, else the first directory from
        the current one upwards holding site.yml and ansible.cfg, else this package's checkout."""
        if root is not None:
            return cls(Path(root))
        env = os.environ.get(ENV_PROJECT)
        if env:
            return cls(Path(env))
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if _is_project(candidate):
                return cls(candidate)
        checkout = Path(__file__).resolve().parents[1]
        if _is_project(checkout):
            return cls(checkout)
        raise ProjectError(
            f"no genai_stack project found from {here}; pass --project or set {ENV_PROJECT}"
        )

    @property
    def ansible_cfg(self) -> Path:
        return self.root / "ansible.cfg"

    @property
    def collections_dir(self) -> Path:
        return self.root / "collections"

    @property
    def default_state_dir(self) -> Path:
        env = os.environ.get(ENV_STATE)
        return Path(env) if env else self.root / ".cache" / "runs"

    @property
    def secrets_dir(self) -> Path:
        """Generated local secrets (0700, ignored by git), as the demo inventory uses."""
        return self.root / ".secrets"

    def playbooks(self) -> dict[str, Path]:
        """Every playbook by name: ``site`` (the root site.yml) and each ``playbooks/*.yml``."""
        found: dict[str, Path] = {}
        directory = self.root / "playbooks"
        if directory.is_dir():
            for path in sorted(directory.glob("*.yml")):
                if path.is_file():
                    found[path.stem] = path
        found["site"] = self.root / "site.yml"
        return dict(sorted(found.items()))

    def resolve_playbook(self, name: str) -> Path:
        """A playbook by name (``validate``), CLI verb (``deploy``) or path (absolute, or relative
        to the project root)."""
        known = self.playbooks()
        key = ALIASES.get(name, name)
        if key in known:
            return known[key]
        path = Path(name)
        if not path.is_absolute():
            path = self.root / path
        if path.is_file():
            return path.resolve()
        choices = ", ".join(known)
        raise ProjectError(f"unknown playbook '{name}' (known: {choices})")

    def playbook_name(self, path: Path) -> str:
        """The short name shown for a playbook path."""
        for name, known in self.playbooks().items():
            if known.resolve() == path.resolve():
                return name
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def configured_inventory(self) -> Path | None:
        """The inventory ansible.cfg names (``[defaults] inventory``), as an absolute path."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.root / "ansible.cfg")
        value = parser.get("defaults", "inventory", fallback="").split(",")[0].strip()
        return (self.root / value).resolve() if value else None

    def module_util(self, name: str) -> ModuleType:
        """``plugins/module_utils/<name>.py`` imported as the collection's own module (pure
        Python, no Ansible import), so the driver shares the collection's code; ``collections/``
        holds the ``ansible_collections/myia/genai_stack`` link to the root that makes the
        module utils' imports of each other resolve."""
        with self._lock:
            module = self._modules.get(name)
            if module is not None:
                return module
            path = self.root / "plugins" / "module_utils" / f"{name}.py"
            if not path.is_file():
                raise ProjectError(f"cannot load {path}")
            collections = str(self.root / "collections")
            if collections not in sys.path:
                sys.path.insert(0, collections)
            module = importlib.import_module(f"{COLLECTION_PACKAGE}.plugins.module_utils.{name}")
            if Path(module.__file__ or "").resolve() != path.resolve():
                raise ProjectError(
                    f"{COLLECTION_PACKAGE} resolves to {module.__file__}, not this project's {path}"
                )
            self._modules[name] = module
            return module

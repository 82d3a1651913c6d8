"""Where the panel keeps its state, and how it listens."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from genai_stack.project import Project

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass
class PanelConfig:
    """``secrets_dir`` holds ``admin.bcrypt`` and ``session.key`` (0700 dir, 0600 files);
    ``state_dir`` the driver's runs, locks and the history database."""

    project: Project
    state_dir: Path
    secrets_dir: Path
    inventory: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    https_only: bool = False
    session_max_age: int = 8 * 3600
    keep_artifacts: int = 50
    vault_password_file: str | None = None
    #: addresses or networks of reverse proxies whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = ()
    #: how long a run's end is tried again while the history database is locked
    history_retry_s: float = 30.0
    #: how long a status (status.yml's reports) is served before a new run
    status_ttl_s: float = 60.0
    #: how long one status run may take
    status_deadline_s: int = 90

    @classmethod
    def create(
        cls,
        project: Project | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        secrets_dir: str | os.PathLike[str] | None = None,
        **kwargs: object,
    ) -> PanelConfig:
        project = project or Project.discover()
        state = Path(state_dir) if state_dir else project.default_state_dir
        env_secrets = os.environ.get("GENAI_PANEL_SECRETS_DIR")
        secrets = Path(secrets_dir or env_secrets or project.secrets_dir / "panel")
        return cls(project=project, state_dir=state, secrets_dir=secrets, **kwargs)  # type: ignore[arg-type]

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / "admin.bcrypt"

    @property
    def session_key_file(self) -> Path:
        return self.secrets_dir / "session.key"

    @property
    def database(self) -> Path:
        return self.state_dir / "panel.sqlite3"

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies]

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

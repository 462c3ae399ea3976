"""What every service of the local stack provides, and its status record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from services.settings import PROJECT_ROOT, Settings

DEPLOY_DIR = PROJECT_ROOT / "deploy"


@dataclass(frozen=True)
class ServiceStatus:
    """One line of ``paystream stack status``."""

    name: str
    url: str
    healthy: bool
    managed: bool  # started by this stack (it has our pid file), not a system service
    pid: int | None
    log: str
    data: str  # where its data lives (PostgreSQL's may be outside the checkout)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


class StackService(Protocol):
    """A service of the local stack (Kafka, PostgreSQL, Redis, anvil,
    Alertmanager, Prometheus)."""

    name: str

    def url(self) -> str:
        """Where clients reach it (no secrets)."""

    def log_path(self) -> Path:
        """Its log file in the state directory."""

    def ports(self) -> dict[str, int]:
        """The ports it listens on, by the setting that chooses each."""

    def data_paths(self) -> list[Path]:
        """What ``reset`` wipes."""

    def install(self) -> None:
        """Make sure its programs and packages are present (idempotent)."""

    def healthy(self) -> bool:
        """True when it answers a real request."""

    def pid(self) -> int | None:
        """The pid of the process this stack started, if it runs."""

    def start(self) -> None:
        """Start it (installed, not running) and return once it is healthy."""

    def stop(self) -> bool:
        """Stop the process this stack started; True if there was one."""


class StatePaths:
    """The layout of the state directory, shared by every service."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.state_dir
        self.logs = self.root / "logs"
        self.run = self.root / "run"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def service_dir(self, name: str) -> Path:
        return self.root / name

    def ensure(self) -> None:
        for path in (self.root, self.logs, self.run):
            path.mkdir(parents=True, exist_ok=True)

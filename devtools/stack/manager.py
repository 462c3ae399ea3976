"""``paystream stack up|down|status|logs|reset``: the local stack as a whole."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from devtools.stack.anvil import AnvilService
from devtools.stack.base import ServiceStatus, StackService, StatePaths
from devtools.stack.errors import StackError
from devtools.stack.kafka import KafkaService
from devtools.stack.monitoring import AlertmanagerService, PrometheusService
from devtools.stack.postgres import PostgresService
from devtools.stack.process import port_open
from devtools.stack.redis import RedisService
from services.settings import Settings

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class LocalStack:
    """Starts, checks and stops the services in dependency-free order."""

    def __init__(self, settings: Settings) -> None:
        self.paths = StatePaths(settings)
        self.host = settings.host
        self.services: list[StackService] = [
            PostgresService(settings, self.paths),
            RedisService(settings, self.paths),
            KafkaService(settings, self.paths),
            AnvilService(settings, self.paths),
            AlertmanagerService(settings, self.paths),
            PrometheusService(settings, self.paths),
        ]

    def select(self, names: list[str] | None) -> list[StackService]:
        if not names:
            return self.services
        known = {s.name: s for s in self.services}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise StackError(f"unknown service(s) {unknown}; known: {sorted(known)}")
        return [known[n] for n in names]

    def up(self, names: list[str] | None = None, report: Report = _quiet) -> None:
        """Install what is missing and start what is not running (idempotent).

        A service that already answers on its configured port is used as it is,
        whether this stack started it or not.
        """
        self.paths.ensure()
        for service in self.select(names):
            if service.healthy():
                owner = "ours" if service.pid() is not None else "already running, reused"
                report(f"{service.name}: up at {service.url()} ({owner})")
                continue
            self._require_free_ports(service)
            report(f"{service.name}: installing if needed")
            service.install()
            report(f"{service.name}: starting")
            service.start()
            report(f"{service.name}: up at {service.url()} (pid {service.pid()})")

    def _require_free_ports(self, service: StackService) -> None:
        """A port that answers without a healthy service behind it belongs to
        another program: starting would fail with a confusing log."""
        pid = service.pid()
        if pid is not None:
            raise StackError(
                f"{service.name}: the process this stack started (pid {pid}) runs but fails its "
                f"health check: `paystream stack logs {service.name}` shows why; after a change "
                f"of password or version, `paystream stack reset {service.name}` starts afresh"
            )
        for setting, port in service.ports().items():
            if port_open(self.host, port):
                raise StackError(
                    f"{service.name}: port {port} is in use by another program that does not "
                    f"answer as {service.name} for these settings: stop that program, or choose "
                    f"another port with {setting}=... in .env (see .env.example); "
                    f"{service.name}'s own log: {service.log_path()}"
                )

    def down(self, names: list[str] | None = None, report: Report = _quiet) -> None:
        """Stop the processes this stack started, newest first, by their pids."""
        for service in reversed(self.select(names)):
            stopped = service.stop()
            report(f"{service.name}: {'stopped' if stopped else 'was not running (ours)'}")

    def status(self, names: list[str] | None = None) -> list[ServiceStatus]:
        return [
            ServiceStatus(
                name=s.name,
                url=s.url(),
                healthy=s.healthy(),
                managed=s.pid() is not None,
                pid=s.pid(),
                log=str(s.log_path()),
                data=", ".join(str(p) for p in s.data_paths()),
            )
            for s in self.select(names)
        ]

    def reset(self, names: list[str] | None = None, report: Report = _quiet) -> None:
        """Stop, then delete the data (downloads such as the Kafka jars stay)."""
        self.down(names, report)
        for service in self.select(names):
            for path in service.data_paths():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            service.log_path().unlink(missing_ok=True)
            self.paths.log(service.name).unlink(missing_ok=True)
            report(f"{service.name}: data wiped ({', '.join(map(str, service.data_paths()))})")

"""Prometheus and Alertmanager from Debian's packages, as private instances in
the state directory (their own configuration, data and ports; the systemd
units the packages install are not used).

Prometheus scrapes every running worker (each writes its address into
``targets_dir``: ``services/metrics/targets.py``), the ledger sink
(``sink_metrics_port``, with every consumer group's lag) and both monitors,
and evaluates the alert rules of ``deploy/prometheus/rules.yml.in``, rendered
with the thresholds in the settings (``alert_*``: the one place their
defaults live); Alertmanager receives what fires.
"""

from __future__ import annotations

import string
import urllib.error
import urllib.request
from pathlib import Path

from devtools.stack.base import DEPLOY_DIR, StatePaths
from devtools.stack.process import PidFile, ensure_program, pid_alive, spawn, wait_until
from services.metrics.targets import targets_dir
from services.settings import Settings

PROMETHEUS_DEPLOY = DEPLOY_DIR / "prometheus"


class _AtTemplate(string.Template):
    """``@{name}`` placeholders: the rules' own ``{{ $labels }}`` stay as they are."""

    delimiter = "@"


def render_rules(settings: Settings) -> str:
    """The alert rules with the settings' thresholds."""
    template = _AtTemplate((PROMETHEUS_DEPLOY / "rules.yml.in").read_text())
    return template.substitute(
        lag_s=f"{settings.alert_lag_s:g}",
        lag_for=f"{settings.alert_lag_for_s:g}s",
        settle_p99_s=f"{settings.alert_settle_p99_s:g}",
        success_rate_min=f"{settings.alert_success_rate_min:g}",
        success_min_count=settings.alert_success_min_count,
        fraud_p99_s=f"{settings.alert_fraud_p99_s:g}",
        head_stall_s=f"{settings.alert_head_stall_s:g}",
        hold_age_s=f"{settings.alert_hold_age_s:g}",
    )


def ready(url: str) -> bool:
    """True when the server at ``url`` answers its ``/-/ready`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as reply:  # noqa: S310 - ours
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class _Monitor:
    """What both monitors share: a data directory, a pid file, a readiness URL."""

    name: str
    program: str
    package: str

    def __init__(self, settings: Settings, paths: StatePaths, port: int, setting: str) -> None:
        self.settings = settings
        self.paths = paths
        self.port = port
        self.setting = setting
        self.home = paths.service_dir(self.name)
        self.data = self.home / "data"
        self._pidfile = PidFile(paths.pidfile(self.name), marker=str(self.home))

    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def ports(self) -> dict[str, int]:
        return {self.setting: self.port}

    def log_path(self) -> Path:
        return self.paths.log(self.name)

    def data_paths(self) -> list[Path]:
        return [self.home]

    def install(self) -> None:
        ensure_program(self.program, self.package)

    def healthy(self) -> bool:
        return ready(self.url())

    def pid(self) -> int | None:
        return self._pidfile.read()

    def start(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        argv = [ensure_program(self.program, self.package), *self.arguments()]
        pid = spawn(argv, log=self.log_path())
        self._pidfile.write(pid)
        wait_until(
            self.healthy,
            timeout_s=self.settings.stack_start_timeout_s,
            what=self.name,
            log=self.log_path(),
            alive=lambda: pid_alive(pid),
        )

    def stop(self) -> bool:
        return self._pidfile.stop(timeout_s=self.settings.stack_stop_timeout_s)

    def arguments(self) -> list[str]:
        raise NotImplementedError


class PrometheusService(_Monitor):
    name = "prometheus"
    program = "prometheus"
    package = "prometheus"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        super().__init__(settings, paths, settings.prometheus_port, "PAYSTREAM_PROMETHEUS_PORT")
        self.config = self.home / "prometheus.yml"
        self.rules = self.home / "rules.yml"

    def render(self) -> None:
        """Write the configuration and the rules for the current settings."""
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        targets_dir(s).mkdir(parents=True, exist_ok=True)
        self.rules.write_text(render_rules(s))
        template = string.Template((PROMETHEUS_DEPLOY / "prometheus.yml.in").read_text())
        self.config.write_text(
            template.substitute(
                scrape_interval=f"{s.prometheus_scrape_s:g}s",
                rules=self.rules,
                host=s.host,
                alertmanager_port=s.alertmanager_port,
                prometheus_port=s.prometheus_port,
                worker_targets=targets_dir(s),
                sink_port=s.sink_metrics_port,
            )
        )

    def start(self) -> None:
        self.render()
        super().start()

    def arguments(self) -> list[str]:
        return [
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address={self.settings.host}:{self.port}",
            "--web.enable-lifecycle",
        ]


class AlertmanagerService(_Monitor):
    name = "alertmanager"
    program = "prometheus-alertmanager"
    package = "prometheus-alertmanager"

    def __init__(self, settings: Settings, paths: StatePaths) -> None:
        super().__init__(settings, paths, settings.alertmanager_port, "PAYSTREAM_ALERTMANAGER_PORT")

    def arguments(self) -> list[str]:
        return [
            f"--config.file={PROMETHEUS_DEPLOY / 'alertmanager.yml'}",
            f"--storage.path={self.data}",
            f"--web.listen-address={self.settings.host}:{self.port}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]

"""The alert rules and the metrics, checked by Prometheus's own ``promtool``
(installed by ``paystream stack up``): the rendered rules are valid and pass
their unit tests (``deploy/prometheus/rules_test.yml``), which fail when a
threshold moves; every process's metrics pass ``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from devtools.stack.monitoring import PROMETHEUS_DEPLOY, render_rules
from services.metrics.catalogue import GatewayMetrics, Metrics, SinkMetrics
from services.settings import Settings

pytestmark = pytest.mark.integration


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, timeout=120)


def rendered(settings: Settings, where: Path) -> Path:
    (where / "rules.yml").write_text(render_rules(settings))
    shutil.copy(PROMETHEUS_DEPLOY / "rules_test.yml", where / "rules_test.yml")
    return where


def test_the_rules_are_valid_and_pass_their_unit_tests(
    stack_healthy: Settings, tmp_path: Path
) -> None:
    where = rendered(stack_healthy, tmp_path)
    checked = promtool("check", "rules", str(where / "rules.yml"))
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    tested = promtool("test", "rules", str(where / "rules_test.yml"))
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()


def test_the_rule_tests_fail_when_a_threshold_moves(
    stack_healthy: Settings, tmp_path: Path
) -> None:
    lax = stack_healthy.model_copy(update={"alert_lag_s": 120.0})
    tested = promtool("test", "rules", str(rendered(lax, tmp_path) / "rules_test.yml"))
    assert tested.returncode != 0
    assert b"ConsumerLagHigh" in tested.stdout + tested.stderr


def test_every_metric_passes_promtool_check_metrics(stack_healthy: Settings) -> None:
    worker = Metrics.create()
    worker.records.labels("settled", "ok").inc()
    worker.latency.labels("settled").observe(0.4)
    worker.dead_letters.labels("fraud").inc()
    worker.alerts.labels("MISMATCH").inc()
    worker.table_entries.labels("payments").set(3)
    sink = SinkMetrics.create()
    sink.records.labels("written").inc(5)
    sink.batches.observe(0.02)
    sink.lag_records.labels("paystream", "payments.requested").set(4)
    sink.lag_seconds.labels("paystream", "payments.requested").set(1.5)
    sink.lag_errors.inc()
    gateway = GatewayMetrics.create()
    gateway.requests.labels("POST", "/v1/payments", "202").inc()
    gateway.duration.labels("POST", "/v1/payments").observe(0.01)
    gateway.admission.labels("admitted").inc()
    for registry in (worker.registry, sink.registry, gateway.registry):
        checked = promtool("check", "metrics", stdin=generate_latest(registry))
        assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()

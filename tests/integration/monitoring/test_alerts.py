"""Prometheus and Alertmanager, started the way ``paystream stack up`` starts
them (private instances for this test, scraping its pipeline's workers and
sink, with short lag thresholds): every target is up, each of two workers
and a gateway found by the file it writes, and a stopped process is no longer
a target; with
the workers stopped and payments still coming, the sink's lag gauge grows and
``ConsumerLagHigh`` fires in Alertmanager for the workers' group; a worker
restarted, it resolves."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from devtools.harness.isolated import free_port
from devtools.harness.process import GatewayProcess, SinkProcess, WorkerProcess
from devtools.stack.base import StatePaths
from devtools.stack.monitoring import AlertmanagerService, PrometheusService
from devtools.stack.process import port_open
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.settings import Settings
from tests.integration.pipeline.conftest import Pipeline, make_pipeline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

LAG_S = 3.0
LAG_FOR_S = 3.0


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 - the test's own servers
        return json.loads(reply.read())


@pytest.fixture
def monitored(stack_healthy: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    p = make_pipeline(
        stack_healthy,
        tmp_path,
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        prometheus_scrape_s=1.0,
        lag_interval_s=1.0,
        alert_lag_s=LAG_S,
        alert_lag_for_s=LAG_FOR_S,
    )
    paths = StatePaths(p.settings)
    monitors = [AlertmanagerService(p.settings, paths), PrometheusService(p.settings, paths)]
    try:
        for monitor in monitors:
            monitor.start()
        yield p
    finally:
        for monitor in monitors:
            monitor.stop()


def lag_alerts(settings: Settings) -> list[dict[str, Any]]:
    url = f"http://{settings.host}:{settings.alertmanager_port}/api/v2/alerts?active=true"
    return [
        a
        for a in get(url)
        if a["labels"].get("alertname") == "ConsumerLagHigh"
        and a["labels"].get("group") == settings.app_id
    ]


def worker_lag_s(settings: Settings) -> float:
    query = f"max(paystream_consumer_lag_seconds{{group=%22{settings.app_id}%22}})"
    url = f"http://{settings.host}:{settings.prometheus_port}/api/v1/query?query={query}"
    result = get(url)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def targets_up(settings: Settings, workers: int, gateways: int = 0) -> bool:
    """Prometheus scrapes the sink, itself, Alertmanager, ``workers`` workers
    and ``gateways`` gateways (each found by its targets file), and every one
    answers."""
    url = f"http://{settings.host}:{settings.prometheus_port}/api/v1/targets"
    active = get(url)["data"]["activeTargets"]
    jobs = [t["labels"]["job"] for t in active]
    up = all(t["health"] == "up" for t in active)
    found = (jobs.count("paystream-worker"), jobs.count("paystream-gateway"))
    return up and len(active) == 3 + workers + gateways and found == (workers, gateways)


def test_the_lag_alert_fires_while_the_worker_is_stopped_and_resolves(
    monitored: Pipeline,
) -> None:
    s = monitored.settings
    producing = threading.Event()
    producer = Producer(kafka_producer_config(s))

    def requests() -> None:  # a bad request is still a record the worker must read
        while producing.is_set():
            producer.produce(s.topic(PAYMENTS_REQUESTED), key=b"lag-payer", value=b"{}")
            producer.poll(0)
            time.sleep(0.5)
        producer.flush(10)

    with SinkProcess(s, monitored.log.with_name("sink.log"), monitored.env):
        wait_for(lambda: port_open(s.host, s.sink_metrics_port), 60, "the sink's metrics")
        worker = monitored.worker().start()
        other = s.model_copy(update={"worker_web_port": free_port()})
        second = WorkerProcess(other, monitored.log.with_name("worker-2.log"), monitored.env)
        second.start()
        api = s.model_copy(update={"gateway_port": free_port()})
        gateway = GatewayProcess(api, monitored.log.with_name("gateway.log"), monitored.env)
        gateway.start()
        wait_for(
            lambda: targets_up(s, 2, 1), 60, "every Prometheus target up: 2 workers, the gateway"
        )
        worker.stop()
        second.stop()
        gateway.stop()
        wait_for(lambda: targets_up(s, workers=0), 30, "the stopped processes no longer scraped")
        producing.set()
        feeder = threading.Thread(target=requests, daemon=True)
        feeder.start()
        try:
            wait_for(lambda: worker_lag_s(s) > LAG_S, 60, "the worker's lag in Prometheus")
            wait_for(lambda: bool(lag_alerts(s)), 60, "ConsumerLagHigh firing in Alertmanager")
            (alert,) = lag_alerts(s)
            assert alert["labels"]["severity"] == "page"
        finally:
            producing.clear()
            feeder.join(timeout=15)
        with monitored.worker():
            wait_for(lambda: not lag_alerts(s), 90, "ConsumerLagHigh resolved")

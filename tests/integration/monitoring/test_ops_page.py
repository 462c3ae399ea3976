"""The ops page and the Grafana dashboard against a running engine: a
pipeline of its own (database, topics, contracts) with a worker, the ledger
sink and the gateway, scraped by a private Prometheus with its Alertmanager,
and payments flowing while the tests look.

- Every expression of the dashboard parses and returns data in Prometheus.
- The page, in headless Chromium, loads without a console error and shows
  numbers that change while payments flow; its screenshot is kept
  (``PAYSTREAM_ARTIFACTS_DIR``, default ``.state/artifacts``).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from devtools.harness.chain import fund_payers
from devtools.harness.isolated import free_port
from devtools.harness.load import LoadGenerator, new_payees
from devtools.harness.process import GatewayProcess, SinkProcess
from devtools.stack.base import StatePaths
from devtools.stack.monitoring import AlertmanagerService, PrometheusService
from services.bootstrap import prepare_schema
from services.metrics.panels import PANELS
from services.settings import Settings
from tests.integration.conftest import database_of_its_own
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.browser import chromium, console_errors
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

DEPOSIT = 1_000_000_000
NOTHING = "\u2013"  # what a tile shows before it has a number
ARTIFACTS = Path(__file__).parents[3] / ".state" / "artifacts"
TILES = ("tps-settled", "p99-settled", "chain-head", "success-rate", "dlq-5m")


@dataclass
class Live:
    settings: Settings
    ops_url: str


def flowing(settings: Settings, payers: list[str], stop: threading.Event) -> None:
    """Payments at 20/s until ``stop`` (a bad record now and then: the DLQ)."""
    load = LoadGenerator(settings, payers, new_payees(10), max_amount=10_000)
    while not stop.is_set():
        load.publish(20.0, duration_s=1.0)


@pytest.fixture(scope="module")
def live(stack_healthy: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("ops")
    with database_of_its_own(stack_healthy) as own:
        p = make_pipeline(
            own,
            tmp,
            pg_database=own.pg_database,
            prometheus_port=free_port(),
            alertmanager_port=free_port(),
            gateway_port=free_port(),
            prometheus_scrape_s=1.0,
            lag_interval_s=1.0,
        )
        s = p.settings
        prepare_schema(s)
        paths = StatePaths(s)
        monitors = [AlertmanagerService(s, paths), PrometheusService(s, paths)]
        stop = threading.Event()
        try:
            for monitor in monitors:
                monitor.start()
            with (
                p.worker() as worker,
                SinkProcess(s, tmp / "sink.log", p.env),
                GatewayProcess(s, tmp / "gateway.log", p.env),
            ):
                payers = [f"ops-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
                asyncio.run(fund_payers(s, payers, DEPOSIT))
                worker.wait_credited(payers, DEPOSIT, timeout_s=90)
                feeder = threading.Thread(target=flowing, args=(s, payers, stop), daemon=True)
                feeder.start()
                yield Live(s, f"http://{s.host}:{s.gateway_port}/ops")
                stop.set()
                feeder.join(timeout=30)
        finally:
            stop.set()
            for monitor in monitors:
                monitor.stop()


def query(settings: Settings, expr: str) -> dict[str, Any]:
    url = (
        f"http://{settings.host}:{settings.prometheus_port}/api/v1/query?"
        + urllib.parse.urlencode({"query": expr})
    )
    with urllib.request.urlopen(url, timeout=10) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
    return answer


def test_every_dashboard_expression_returns_data(live: Live) -> None:
    waiting = {panel.key: panel.expr for panel in PANELS}

    def answered() -> bool:
        for key, expr in list(waiting.items()):
            answer = query(live.settings, expr)
            assert answer["status"] == "success", (key, answer)  # it parses
            if answer["data"]["result"]:
                del waiting[key]
        return not waiting

    wait_for(answered, 180, f"data for every panel (still none: {sorted(waiting)})")


def tiles(driver: Any) -> dict[str, str]:
    return {tile: driver.find_element(By.ID, tile).text for tile in TILES}


def test_the_ops_page_shows_the_pipeline_live_in_chromium(live: Live, tmp_path: Path) -> None:
    token = live.settings.ops_token.get_secret_value()
    artifacts = Path(os.environ.get("PAYSTREAM_ARTIFACTS_DIR", ARTIFACTS))
    with chromium(tmp_path / "profile") as driver:
        driver.get(f"{live.ops_url}#token={urllib.parse.quote(token)}")
        wait_for(
            lambda: driver.find_element(By.ID, "updated").text.startswith("updated"),
            60,
            "the page's first data",
        )
        wait_for(lambda: tiles(driver)["tps-settled"] != NOTHING, 120, "a settled throughput")
        first = tiles(driver)
        wait_for(lambda: tiles(driver) != first, 60, "the numbers changing")
        assert driver.find_element(By.ID, "problems").text == ""  # every source answered
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-lag polyline")  # lag drawn
        assert console_errors(driver) == []
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = artifacts / "ops-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000

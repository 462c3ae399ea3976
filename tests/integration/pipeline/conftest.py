"""An isolated pipeline per test module: its own app id (consumer group and
tables), topic prefix, state directory and contract deployment, on the stack's
Kafka, Redis and anvil, with a real `paystream worker` process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from devtools.harness.isolated import isolated
from devtools.harness.process import WorkerProcess
from services.settings import Settings

BLOCKED_PAYEE = Account.create().address


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]
    log: Path

    def worker(self) -> WorkerProcess:
        return WorkerProcess(self.settings, self.log, self.env)


def make_pipeline(base: Settings, tmp: Path, **overrides: object) -> Pipeline:
    run = isolated(
        base,
        f"test-{uuid.uuid4().hex[:8]}",
        tmp / "state",
        batch_timeout_s=5.0,
        fraud_blocklist=frozenset({BLOCKED_PAYEE}),
        **overrides,
    )
    return Pipeline(run.settings, run.env, tmp / "worker.log")


@pytest.fixture(scope="module")
def pipeline(
    stack_healthy: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    yield make_pipeline(stack_healthy, tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="module")
def running(pipeline: Pipeline) -> Iterator[WorkerProcess]:
    with pipeline.worker() as worker:
        yield worker

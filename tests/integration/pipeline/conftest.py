"""An isolated pipeline per test module: its own app id (consumer group and
tables), topic prefix, state directory and contract deployment, on the stack's
Kafka, Redis and anvil, with a real `paystream worker` process."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from services.bootstrap import tx_sender, web3_client
from services.chain.deployment import deploy
from services.chain.keys import ChainKeys
from services.demo.worker import WorkerProcess
from services.settings import Settings
from services.topics import create_topics
from tests.support.ports import free_port

BLOCKED_PAYEE = Account.create().address


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]
    log: Path

    def worker(self) -> WorkerProcess:
        return WorkerProcess(self.settings, self.log, self.env)


def make_pipeline(base: Settings, tmp: Path, **overrides: object) -> Pipeline:
    run = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "state_dir": tmp / "state",
        "app_id": f"test-{run}",
        "topic_prefix": f"test-{run}.",
        "worker_web_port": free_port(),
        "batch_timeout_s": 5.0,
        "fraud_blocklist": frozenset({BLOCKED_PAYEE}),
        **overrides,
    }
    settings = base.model_copy(update=values)
    env = {
        f"PAYSTREAM_{k.upper()}": json.dumps(sorted(v)) if isinstance(v, frozenset) else str(v)
        for k, v in values.items()
    }
    w3 = web3_client(settings)
    asyncio.run(deploy(w3, settings, ChainKeys.from_settings(settings), tx_sender(w3, settings)))
    create_topics(settings)
    return Pipeline(settings, env, tmp / "worker.log")


@pytest.fixture(scope="module")
def pipeline(
    stack_healthy: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    yield make_pipeline(stack_healthy, tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="module")
def running(pipeline: Pipeline) -> Iterator[WorkerProcess]:
    with pipeline.worker() as worker:
        yield worker

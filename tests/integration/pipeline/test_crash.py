"""A worker killed with SIGKILL mid-run and restarted loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from devtools.harness.chain import fund_payers
from devtools.harness.collect import collect
from devtools.harness.load import LoadGenerator, new_payees
from services.settings import Settings
from tests.integration.pipeline.conftest import Pipeline, make_pipeline
from tests.integration.pipeline.test_end_to_end import (
    chain_settlements,
    settled_set,
)

pytestmark = pytest.mark.integration

DEPOSIT = 1_000_000_000


@pytest.fixture
def crash_pipeline(
    stack_healthy: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    yield make_pipeline(stack_healthy, tmp_path_factory.mktemp("crash"))


def test_sigkill_mid_run_then_restart(crash_pipeline: Pipeline) -> None:
    settings = crash_pipeline.settings
    payers = [f"crash-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
    load = LoadGenerator(settings, payers, new_payees(40), max_amount=2_000_000)

    first = crash_pipeline.worker().start()
    try:
        asyncio.run(fund_payers(settings, payers, DEPOSIT))
        first.wait_credited(payers, DEPOSIT, timeout_s=90)
        ids = set(load.publish(400, count=400).ids)
        partial = collect(settings, ids, timeout_s=60, stop_after=100)
        assert 0 < len(partial.settled) < len(ids), "kill mid-run: some, not all, settled"
    finally:
        first.kill()

    time.sleep(1)
    with crash_pipeline.worker() as second:
        outcomes = collect(settings, ids, timeout_s=180)
        balances = {p: second.balance(p) for p in payers}

    assert len(outcomes.settled) + len(outcomes.failed) == len(ids), "a payment was lost"
    assert outcomes.duplicates == 0, "a payment got two different outcomes"
    assert outcomes.failed == {}
    assert asyncio.run(chain_settlements(settings)) == settled_set(outcomes.settled)
    for payer in payers:
        spent = sum(
            int(str(r["amount"])) for r in outcomes.settled.values() if r["payer_account"] == payer
        )
        assert balances[payer] == {
            "account": payer,
            "available": DEPOSIT - spent,
            "held": 0,
            "settled": spent,
            "owed": 0,
        }

"""Gas per payment at batch 200 stays within the targets (gas is deterministic on
a given chain, so this is a behaviour check, not a timing test)."""

from __future__ import annotations

import pytest

from devtools.bench.gas_report import GasReport
from services.chain.client import Web3ChainClient

pytestmark = pytest.mark.integration

TARGETS = {"existing": 10_000, "new": 27_000}


async def test_batch_of_200_meets_the_gas_targets(chain: Web3ChainClient) -> None:
    report = GasReport(chain.w3, chain.settings, chain.sender, batch_sizes=(200,))
    rows = await report.run()
    assert {r.payees for r in rows} == set(TARGETS)
    for row in rows:
        assert row.gas_per_payment <= TARGETS[row.payees], row
        assert row.gas_per_payment < row.baseline_gas_per_transfer, row

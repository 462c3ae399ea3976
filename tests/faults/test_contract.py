"""The contract refuses batches for a while: paused by its admin, or its
treasury short of funds. Neither says anything about the payments: they stay
held, their batches are sent again, and every one settles once it clears."""

from __future__ import annotations

import asyncio

from tests.faults.admin import move_treasury
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 30.0
OUTAGE_S = 30.0


def assert_all_settled(p: FaultPipeline, ids: list[str]) -> None:
    traces = p.collector.traces(ids)
    failed = {pid: t.code for pid, t in traces.items() if t.code is not None}
    assert not failed, f"{len(failed)} payments failed: {sorted(set(failed.values()))}"


def test_contract_paused_for_30_s_mid_run(faults: Faults) -> None:
    """``paystream admin pause`` while payments flow, ``unpause`` 30 s later."""
    p = faults.pipeline()
    p.start(workers=1)
    payers = p.payers(20)
    p.fund(payers)
    count = scaled(600)
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        p.sleep(2.0, 6.0)
        p.cli("admin", "pause", "--yes", "--by", "fault-suite")
        p.mark("contract paused")
        p.sleep(OUTAGE_S, OUTAGE_S)
        p.cli("admin", "unpause", "--yes", "--by", "fault-suite")
        p.mark("contract unpaused")
        ids = sent.result().ids
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    assert_all_settled(p, ids)


def test_treasury_short_then_topped_up(faults: Faults) -> None:
    """The treasury holds too little for a batch while payments come in; 30 s
    later the admin puts the funds back."""
    p = faults.pipeline()
    p.start(workers=1)
    payers = p.payers(10)
    p.fund(payers)
    left = asyncio.run(move_treasury(p, 1_500_000))
    p.mark(f"treasury drained to {left}")
    count = scaled(300)
    with publishing(p.load(payers, payees=20), RATE_PER_S, count) as sent:
        ids = sent.result().ids
    p.sleep(OUTAGE_S, OUTAGE_S)
    p.mark(f"treasury topped up to {asyncio.run(move_treasury(p, None))}")
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    assert_all_settled(p, ids)

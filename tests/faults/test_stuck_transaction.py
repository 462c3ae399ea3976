"""A settlement transaction stuck in the mempool past the sender's timeout,
then mined (audit finding 1): its payments must not be failed and refunded
while the transaction can still pay them.

The base fee is raised with ``anvil_setNextBlockBaseFeePerGas`` above the
sender's fee cap, so neither a replacement nor a retry can be sent, and lowered
once the sender has given up. anvil, unlike geth, drops a pending transaction
whose fee cap is below the base fee of a block it mines, so mining is paused
while the fee is high: the transaction stays in the pool, as on a congested
chain, instead of vanishing.
"""

from __future__ import annotations

import time

from services.chain.keys import ChainKeys
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.verdict import assert_invariants

pytestmark = MARKS

PAYMENTS_PER_ROUND = 50
CANCEL_AFTER_S = 20.0
STUCK_S = 25.0  # longer than the sender's timeouts below allow it to wait
SENDER = {
    "chain_receipt_timeout_s": 5.0,
    "chain_replace_after_s": 2.0,
    "settle_retries_max": 1,
    "settle_backoff_ms": 200,
}


def _pending(p: FaultPipeline) -> int:
    """The operator's transactions sent but not mined."""
    operator = ChainKeys.from_settings(p.settings).operator.address
    pending = int(p.node("eth_getTransactionCount", operator, "pending"), 16)
    return pending - int(p.node("eth_getTransactionCount", operator, "latest"), 16)


def _wait_sent(p: FaultPipeline, timeout_s: float = 20.0) -> int:
    """Wait until the worker has sent its transactions (a pending count that
    has stopped growing); how many are pending."""
    deadline, last, steady = time.monotonic() + timeout_s, -1, 0
    while time.monotonic() < deadline and steady < 3:
        count = _pending(p)
        steady = steady + 1 if count == last and count > 0 else 0
        last = count
        time.sleep(0.5)
    return last


def _stuck_round(p: FaultPipeline, payers: list[str]) -> list[str]:
    """Payments whose transaction is held in the pool while fees are too high."""
    base_fee = int(p.node("eth_getBlockByNumber", "pending", False)["baseFeePerGas"], 16)
    p.node("evm_setIntervalMining", 0)
    try:
        ids = p.load(payers, payees=10).publish(None, count=PAYMENTS_PER_ROUND).ids
        pending = _wait_sent(p)
        high = 2 * p.settings.chain_max_fee_wei
        p.node("anvil_setNextBlockBaseFeePerGas", hex(high))
        p.mark(f"{pending} settlement txs in the pool; base fee {high} (above the cap)")
        done = p.wait_outcomes(ids, timeout_s=STUCK_S, stall_s=STUCK_S)
        p.mark(f"{done} of {len(ids)} payments got an outcome while their tx was stuck")
    finally:
        p.node("anvil_setNextBlockBaseFeePerGas", hex(base_fee))
        p.node("evm_setIntervalMining", 1)
        p.mark(f"base fee back to {base_fee}, mining again")
    return ids


def test_stuck_transaction_mined_after_the_sender_gave_up(faults: Faults) -> None:
    p = faults.pipeline(**SENDER)
    p.start()
    payers = p.payers(10)
    p.fund(payers)
    ids: list[str] = []
    for _ in range(scaled(1)):
        ids += _stuck_round(p, payers)
    assert_invariants(p, ids, timeout_s=120)


NEVER_LANDS = {
    "chain_replace_after_s": 2.0,
    "chain_max_replacements": 0,  # only the forgotten-version re-send puts it back
    "chain_cancel_after_s": CANCEL_AFTER_S,
}


def _paused_round(p: FaultPipeline, payers: list[str], drop: bool, paused_s: float) -> list[str]:
    """A round of payments sent while mining is paused for ``paused_s``; with
    ``drop``, the node forgets every transaction in its pool once they are sent."""
    p.node("evm_setIntervalMining", 0)
    try:
        ids = p.load(payers, payees=10).publish(None, count=PAYMENTS_PER_ROUND).ids
        pending = _wait_sent(p)
        if drop:
            p.node("anvil_dropAllTransactions")
            p.mark(f"the node forgot {pending} settlement txs ({_pending(p)} pending now)")
        time.sleep(paused_s)
        p.mark(f"{_pending(p)} txs pending after {paused_s:.0f} s without mining")
    finally:
        p.node("evm_setIntervalMining", 1)
    return ids


def test_a_transaction_that_never_lands_is_sent_again_or_cancelled(faults: Faults) -> None:
    """Audit finding 2: a settlement transaction the chain never mines. Forgotten
    by the node, it is sent again and pays; kept out of blocks past
    ``chain_cancel_after_s``, it is cancelled and its payments fail with
    SETTLEMENT_TIMEOUT once the cancel is mined (proof they are unpaid). Either
    way every hold ends, and no payment is paid twice."""
    p = faults.pipeline(**NEVER_LANDS)
    p.start()
    payers = p.payers(10)
    p.fund(payers)
    resent: list[str] = []
    cancelled: list[str] = []
    for _ in range(scaled(1)):
        resent += _paused_round(p, payers, drop=True, paused_s=CANCEL_AFTER_S / 2)
        assert p.wait_outcomes(resent, timeout_s=120) == len(resent)
        cancelled += _paused_round(p, payers, drop=False, paused_s=CANCEL_AFTER_S + 10)
    assert_invariants(p, resent + cancelled, timeout_s=120)
    traces = p.collector.traces(resent + cancelled)
    assert {traces[pid].code for pid in resent} == {None}
    assert {traces[pid].code for pid in cancelled} == {"SETTLEMENT_TIMEOUT"}

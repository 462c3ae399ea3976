"""Reorgs of the scenario's own anvil (``anvil_reorg``) while payments flow,
with soft settlements and a fresh deposit in the removed blocks:

- depth 2 to 4, the removed transactions dropped for good: the deposit is
  reversed, the settlements are told (``payments.reorged``, RE_SENT) and sent
  again;
- then the same, the removed transactions re-included in the new block in
  another order (the deposit last, at another log index): the deposit stays
  credited once, the settlements are told (RE_INCLUDED) and settled again in
  the new block.

After both, the usual invariants (one outcome per payment, nobody paid twice,
ledger = chain per account, reconcile clean) and: the dropped deposit credited
nowhere, the re-included one exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devtools.harness.chain import fund_payers
from schemas.topics import PAYMENTS_REORGED
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.sources import chain_facts, read_topic
from tests.faults.verdict import publishing, verdict

pytestmark = MARKS

RATE_PER_S = 30.0
EXTRA = 7_000_001  # the deposits the reorgs remove


def deposit(p: FaultPipeline, account: str) -> int:
    """A real deposit of EXTRA, credited by the worker; the block it is in."""
    asyncio.run(fund_payers(p.settings, [account], EXTRA))
    p.worker("worker-1").wait_credited([account], EXTRA, 60)
    chain = asyncio.run(chain_facts(p.settings, set()))
    (found,) = [d for d in chain.deposits if d.account == account]
    return found.at.block_number


def head(p: FaultPipeline) -> int:
    return int(p.node("eth_blockNumber"), 16)


def reorg_from(p: FaultPipeline, first: int, re_include: bool, last_tx: str | None) -> None:
    """Replace the blocks from ``first`` to the head by one block, empty or
    holding their transactions again (``last_tx`` moved to the end)."""
    depth = head(p) - first + 1
    txs: list[str] = []
    raw: list[list[Any]] = []
    if re_include:
        for number in range(first, first + depth):
            block = p.node("eth_getBlockByNumber", hex(number), False)
            txs += [str(h) for h in block["transactions"]]
        if last_tx is not None:
            txs = [h for h in txs if h.lower() != last_tx.lower()] + [last_tx]
        raw = [[p.node("eth_getRawTransactionByHash", h), 0] for h in txs]
    p.node("anvil_reorg", depth, raw)
    p.mark(f"reorg of depth {depth} from block {first}: {len(txs)} transactions re-included")


def deposit_tx(p: FaultPipeline, account: str) -> str:
    chain = asyncio.run(chain_facts(p.settings, set()))
    (found,) = [d for d in chain.deposits if d.account == account]
    return found.at.tx_hash


def test_reorgs_drop_and_re_include_settlements_and_a_deposit(faults: Faults) -> None:
    # A transaction a reorg lost unseen (sent, then its nonce taken by a
    # re-included one) is sent again by the sweeper 10 x batch_timeout_s later.
    p = faults.pipeline(batch_timeout_s=2.0)
    p.start(workers=1)
    payers = p.payers(8)
    p.fund(payers)
    dropped, kept = p.payers(2, tag="reorged")
    count = scaled(300)
    with publishing(p.load(payers, payees=20), RATE_PER_S, count) as sent:
        p.sleep(2.0, 4.0)
        block = deposit(p, dropped)
        p.sleep(1.0, 2.0)  # settlements in the blocks after it too
        reorg_from(p, block, re_include=False, last_tx=None)
        p.sleep(2.0, 4.0)
        block = deposit(p, kept)
        p.sleep(1.0, 2.0)
        reorg_from(p, block, re_include=True, last_tx=deposit_tx(p, kept))
        ids = sent.result().ids
    violations, report = verdict(p, ids, timeout_s=120 + count / 20)
    assert not violations, report
    assert "'deposits reversed by reorgs': 1" in report, report
    worker = p.worker("worker-1")
    assert (worker.balance(dropped) or {}).get("available", 0) == 0
    assert (worker.balance(kept) or {}).get("available") == EXTRA
    told = [r.value for r in read_topic(p.settings, PAYMENTS_REORGED) if isinstance(r.value, dict)]
    print("payments.reorged:", json.dumps(sorted({(v["next"], v["reorgs"]) for v in told})))
    assert told, "the reorgs removed no settlement: nothing to tell"

"""Reorgs of the scenario's own anvil (``anvil_reorg``) while payments flow,
with soft settlements and a fresh deposit in the removed blocks
(``finality_depth`` 4; mining is frozen around each reorg so its depth is
what the scenario says):

- depth 2 or 3, the removed transactions dropped for good: the deposit is
  reversed, the settlements are told (``payments.reorged``, RE_SENT) and sent
  again;
- depth 2 or 3, the removed transactions re-included in one new block in
  another order (the deposit last, at another log index): the deposit stays
  credited once, the settlements are told (RE_INCLUDED) and settled again in
  the new block;
- depth 6, deeper than finality, dropped: settlement halts (a ``DEEP_REORG``
  alert) and the 10 payments published then get no outcome until
  ``paystream chain resume-settlement``; what the reorg removed is undone all
  the same.

After all three, the usual invariants (one outcome per payment, nobody paid
twice, ledger = chain per account, reconcile clean, every hold ended, every
settlement final) and: the dropped deposit credited nowhere, the re-included
one exactly once.

Then the worker is SIGKILLed and the listener's cursor deleted from Redis (a
lost cache): restarted, the listener reads the chain again from its first
block. Each balance remembers one deposit only (``deposit_memory`` 1) and four
payers made two, so their first deposits are known from the ledger only; the
invariants hold again (reconcile compares the balances table with the ledger,
so a deposit credited twice in Faust fails it)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from devtools.harness.chain import fund_payers
from schemas.topics import CHAIN_EVENTS, PAYMENTS_REORGED, RECONCILIATION_ALERTS
from services.bootstrap import redis_client
from tests.faults.conftest import Faults
from tests.faults.pipeline import DEPOSIT, FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.sources import chain_events, chain_facts, read_topic
from tests.faults.verdict import publishing, verdict

pytestmark = MARKS

RATE_PER_S = 30.0
EXTRA = 7_000_001  # the deposits the reorgs remove
FINALITY = 4


def head(p: FaultPipeline) -> int:
    return int(p.node("eth_blockNumber"), 16)


def deposit(p: FaultPipeline, account: str) -> tuple[int, str]:
    """A real deposit of EXTRA, credited by the worker, with mining frozen
    from its receipt on; its block and transaction."""
    asyncio.run(fund_payers(p.settings, [account], EXTRA))
    p.node("evm_setIntervalMining", 0)
    p.worker("worker-1").wait_credited([account], EXTRA, 60)
    chain = asyncio.run(chain_facts(p.settings, set()))
    (found,) = [d for d in chain.deposits if d.account == account]
    return found.at.block_number, found.at.tx_hash


def reorg(p: FaultPipeline, first: int, re_include: bool, last_tx: str | None = None) -> None:
    """Replace the blocks from ``first`` to the head by one block, empty or
    holding their transactions again (``last_tx`` moved to the end); then
    mining goes on, a block a second."""
    depth = head(p) - first + 1
    txs: list[str] = []
    for number in range(first, first + depth) if re_include else ():
        txs += [str(h) for h in p.node("eth_getBlockByNumber", hex(number), False)["transactions"]]
    if last_tx is not None:
        txs = [h for h in txs if h.lower() != last_tx.lower()] + [last_tx]
    raw: list[list[Any]] = [[p.node("eth_getRawTransactionByHash", h), 0] for h in txs]
    p.node("anvil_reorg", depth, raw)
    p.node("evm_setIntervalMining", 1)
    p.mark(f"reorg of depth {depth} from block {first}: {len(txs)} transactions re-included")


def shallow(p: FaultPipeline, account: str, re_include: bool) -> None:
    """A reorg of depth 2 (3 if a block slipped in before mining froze) over a
    fresh deposit's block and the next one."""
    block, tx = deposit(p, account)
    if head(p) == block:
        p.node("evm_mine")
    reorg(p, block, re_include, tx if re_include else None)


def test_reorgs_under_and_beyond_finality(faults: Faults) -> None:
    # A transaction a reorg lost unseen (sent, then its nonce taken by a
    # re-included one) is sent again by the sweeper 10 x batch_timeout_s later.
    p = faults.pipeline(batch_timeout_s=2.0, finality_depth=FINALITY, deposit_memory=1)
    p.start(workers=1)
    payers = p.payers(8)
    p.fund(payers)
    topped = payers[:4]  # a second deposit each: the first is then forgotten by the worker
    asyncio.run(fund_payers(p.settings, topped, EXTRA))
    p.worker("worker-1").wait_credited(topped, DEPOSIT + EXTRA, 60)
    dropped, kept = p.payers(2, tag="reorged")
    count = scaled(300)
    with publishing(p.load(payers, payees=20), RATE_PER_S, count) as sent:
        p.sleep(2.0, 4.0)
        shallow(p, dropped, re_include=False)
        p.sleep(2.0, 4.0)
        shallow(p, kept, re_include=True)
        ids = sent.result().ids
    p.sleep(FINALITY + 2.0, FINALITY + 3.0)  # what settled by now is final
    p.node("evm_setIntervalMining", 0)
    reorg(p, head(p) - FINALITY - 1, re_include=False)
    halted = wait_for_alert(p, "DEEP_REORG", timeout_s=30)
    p.mark("settlement halted")
    waiting = p.load(payers, payees=5).publish(20.0, None, 10).ids
    p.sleep(4.0, 6.0)  # longer than the sweeper's timeout: it tries, and may not send
    assert p.collector.finished(waiting) == 0, "a payment settled while settlement was halted"
    p.cli("chain", "resume-settlement", "--by", "faults")
    p.mark("settlement resumed")
    ids += waiting
    violations, report = verdict(p, ids, timeout_s=120 + count / 20)
    assert not violations, report
    assert "'deposits reversed by reorgs': 1" in report, report
    worker = p.worker("worker-1")
    assert (worker.balance(dropped) or {}).get("available", 0) == 0
    assert (worker.balance(kept) or {}).get("available") == EXTRA
    told = [r.value for r in read_topic(p.settings, PAYMENTS_REORGED) if isinstance(r.value, dict)]
    print("payments.reorged:", json.dumps(sorted({(v["next"], v["reorgs"]) for v in told})))
    assert told, "the reorgs removed no settlement: nothing to tell"
    assert "finality_depth 4" in halted
    lose_cursor(p)
    again = wait_for_reread(p, topped, timeout_s=90)
    p.mark("the chain read again")
    violations, report = verdict(p, ids, timeout_s=120)  # the deposits shown again: once each
    assert not violations, report
    shown = {(v["deposit_id"], v["account"]) for v in again if v["account"] in topped}
    assert len(shown) == 2 * len(topped), shown


def wait_for_reread(p: FaultPipeline, topped: list[str], timeout_s: float) -> list[dict[str, Any]]:
    """The deposit events on ``chain.events`` once the restarted listener has
    shown the topped-up accounts' two deposits again (each at least twice);
    AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        again = [
            v
            for v in chain_events(read_topic(p.settings, CHAIN_EVENTS))
            if v.get("kind") == "DEPOSIT"
        ]
        if sum(v["account"] in topped for v in again) >= 4 * len(topped):
            return again
        if time.monotonic() > deadline:
            raise AssertionError(f"the listener read no deposit again within {timeout_s:.0f} s")
        time.sleep(1.0)


def lose_cursor(p: FaultPipeline) -> None:
    """SIGKILL the worker and delete its listener's cursor (a flushed Redis):
    restarted, the listener reads the chain again from block 0."""
    p.supervisor.kill("worker-1")

    async def delete() -> int:
        client = redis_client(p.settings)
        try:
            pattern = f"paystream:listener:{p.settings.app_id}:*"
            keys = [k async for k in client.scan_iter(match=pattern)]
            return int(await client.delete(*keys)) if keys else 0
        finally:
            await client.aclose()

    assert asyncio.run(delete()) == 1, "no listener cursor in Redis"
    p.supervisor.start("worker-1")
    p.mark("the listener's cursor deleted; worker restarted")


def wait_for_alert(p: FaultPipeline, kind: str, timeout_s: float) -> str:
    """The detail of the first alert of this kind (AssertionError after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for r in read_topic(p.settings, RECONCILIATION_ALERTS):
            if isinstance(r.value, dict) and r.value.get("kind") == kind:
                return str(r.value.get("detail"))
        time.sleep(1.0)
    raise AssertionError(f"no {kind} alert within {timeout_s:.0f} s")

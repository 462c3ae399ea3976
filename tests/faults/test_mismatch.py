"""A payment the chain paid otherwise than requested (here a second holder of
the operator key pays its claimed sequence number to another payee, for
another amount, while the engine's batch waits for a short treasury). The
reconciler keeps its hold in MISMATCH; ``paystream mismatches list`` shows it
with what the chain paid; the operator accepts (the payer pays the requested
amount) or rejects it (the payer pays nothing), and ``paystream reconcile`` is
clean either way: the ledger books what the chain paid, the difference in
``platform:suspense``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from eth_account import Account

from devtools.harness.load import request
from schemas.onchain import PaymentRecord, account_ref
from schemas.payments import PaymentRequested
from services.bootstrap import chain_client
from services.store.ledger import SUSPENSE_ACCOUNT
from tests.faults.admin import move_treasury, top_up_treasury
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS
from tests.faults.producers import publish
from tests.faults.sources import run_reconcile
from tests.integration.conftest import connect

pytestmark = MARKS

AMOUNT, PAID = 1_000, 640  # requested, and what the chain pays instead
CLAIM_TIMEOUT_S = 60.0


def claimed_sequence(p: FaultPipeline, payment: PaymentRequested) -> int:
    """The sequence number the engine claimed for the payment (it waits to be sent)."""
    deadline = time.monotonic() + CLAIM_TIMEOUT_S
    while time.monotonic() < deadline:
        with connect(p.settings) as conn:
            row = conn.execute(
                "SELECT sequence FROM payment_claims WHERE payment_id = %s", (payment.payment_id,)
            ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.5)
    raise AssertionError(f"{payment.payment_id} was not claimed in {CLAIM_TIMEOUT_S:.0f} s")


async def pay_otherwise(p: FaultPipeline, payment: PaymentRequested, sequence: int) -> str:
    """Pay the payment's sequence to a fresh payee, PAID instead of AMOUNT."""
    client = await chain_client(p.settings)
    other = str(Account.create().address)
    record = PaymentRecord(other, PAID, sequence, account_ref(payment.payer_account))
    receipt = await client.settle_batch(10**9, [record])
    assert [s.sequence for s in receipt.settled] == [sequence]
    return other


def ledger_balance(p: FaultPipeline, account: str) -> int:
    with connect(p.settings) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = %s", (account,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_payments_the_chain_paid_otherwise_wait_for_an_operator(faults: Faults) -> None:
    """Two payments paid otherwise: the first accepted, the second rejected; a
    third, paid as requested, settles as usual."""
    p = faults.pipeline()
    p.start(workers=1)
    (payer,) = p.payers(1)
    p.fund([payer])
    p.mark(f"treasury drained to {asyncio.run(move_treasury(p, 2_000))}")
    payments = [request(payer, str(Account.create().address), AMOUNT) for _ in range(3)]
    publish(p.settings, payments, documented=True)
    others = []
    for payment in payments[:2]:
        sequence = claimed_sequence(p, payment)
        others.append(asyncio.run(pay_otherwise(p, payment, sequence)))
        p.mark(f"sequence {sequence} paid {PAID} to {others[-1]} behind the engine's back")
    p.mark(f"treasury topped up to {asyncio.run(move_treasury(p, None))}")
    ids = [str(r.payment_id) for r in payments]
    p.wait_outcomes(ids[2:], timeout_s=120)
    listed = wait_listed(p, 2)
    assert [(m["payment_id"], m["payer_account"]) for m in listed] == [(i, payer) for i in ids[:2]]
    assert [(m["chain"]["amount"], m["chain"]["payee_address"]) for m in listed] == [
        (PAID, other) for other in others
    ]
    assert not any(t.stages.get("settled") or t.code for t in p.collector.traces(ids[:2]).values())

    for pid, verdict in zip(ids, ("accept", "reject"), strict=False):
        out = p.cli("mismatches", verdict, pid, "--note", "ticket 42", "--json", "--wait", "60")
        result = json.loads(out.splitlines()[-1])
        assert result["applied"] and (result["status"], result["code"]) == EXPECTED[verdict]
    assert p.cli("mismatches", "list").splitlines()[-1] == "0 payment(s) in MISMATCH"

    notes = p.rest(ids, timeout_s=60)
    assert not notes, notes
    assert [ledger_balance(p, other) for other in others] == [PAID, PAID]
    suspense = (AMOUNT - PAID) + (0 - PAID)  # accepted: +360 charged unpaid; rejected: -640
    assert ledger_balance(p, SUSPENSE_ACCOUNT) == suspense < 0
    report = run_reconcile(p.env)
    assert report.report is not None, report
    # The chain paid out more than the payers were charged: the treasury is short
    # of what they are owed by exactly the suspense deficit, until the platform
    # tops it up.
    (short,) = report.report["mismatches"]
    assert (short["kind"], short["owed"] - short["treasury"]) == ("treasury_insolvent", -suspense)
    p.mark(f"treasury topped up to {asyncio.run(top_up_treasury(p, -suspense))}")
    report = run_reconcile(p.env)
    assert report.returncode == 0 and report.report is not None, report
    assert report.report["mismatches"] == []


EXPECTED = {"accept": ("SETTLED", None), "reject": ("FAILED", "SETTLEMENT_MISMATCH")}


def wait_listed(p: FaultPipeline, count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """``paystream mismatches list --json`` once it lists ``count`` payments."""
    deadline = time.monotonic() + timeout_s
    listed: list[dict[str, Any]] = []
    while len(listed) < count and time.monotonic() < deadline:
        time.sleep(1.0)
        listed = [json.loads(line) for line in p.cli("mismatches", "list", "--json").splitlines()]
    return listed

"""Merchant payments with fees, while the worker is SIGKILLed: each merchant is
registered with ``paystream merchants create`` (one of them while payments
already flow: the payments that name it must find it), the contract pays
amount - fee to the payout address and the fees to the platform's fee
recipient, and the invariants check both against the ledger to the unit.
Requests naming a merchant with another payee are refused up front."""

from __future__ import annotations

import json

from eth_account import Account

from devtools.harness.load import request
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import publish
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 30.0
FEES_BPS = (250, 0, 1_000)


def register(p: FaultPipeline, name: str, fee_bps: int) -> tuple[str, str]:
    """A new merchant (its payout address, its id)."""
    payout = str(Account.create().address)
    out = p.cli(
        "merchants", "create", name, "--payout-address", payout, "--fee-bps", str(fee_bps), "--json"
    )
    return payout, json.loads(out.splitlines()[-1])["merchant_id"]


def test_merchant_payments_pay_their_fees_on_chain(faults: Faults) -> None:
    p = faults.pipeline()
    p.start(workers=1)
    payers = p.payers(10)
    p.fund(payers)
    merchants = dict(register(p, f"shop-{i}", bps) for i, bps in enumerate(FEES_BPS[:2]))
    p.mark(f"registered {len(merchants)} merchants")
    count = scaled(400)
    load = p.load(payers, payees=10, merchant_of=merchants)
    with publishing(load, RATE_PER_S, count) as sent:
        p.sleep(3.0, 6.0)
        payout, late = register(p, "late-shop", FEES_BPS[2])
        load.merchant_of[payout] = late  # named from now on (the load thread picks it up)
        load.payees = [*load.payees, payout]
        p.mark(f"registered {late} while payments flow")
        p.sleep(1.0, 4.0)
        p.supervisor.kill("worker-1")
        p.sleep(0.0, 2.0)
        p.supervisor.start("worker-1")
        ids = sent.result().ids
    wrong = request(payers[0], str(Account.create().address), 100, merchant_id=late)
    publish(p.settings, [wrong], documented=True)
    ids.append(str(wrong.payment_id))
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    traces = p.collector.traces(ids)
    assert traces[ids[-1]].code == "NOT_MERCHANT_PAYEE"
    paid = [pid for pid in ids[:-1] if traces[pid].code is None]
    assert len(paid) == count, {traces[pid].code for pid in ids[:-1]} - {None}

"""One bad payment fails alone: inside merged batches of 200, a payment to the
zero address and payments to a payee the token has blacklisted (the test
token, like USDC, refuses every transfer to such an address).

The zero address is refused before any hold (``PAYEE_NOT_PAYABLE``). The
blacklisted payee is an ordinary address to the engine, so its payments are
batched: the token's refusal reverts the whole transaction (``TransferFailed``),
only that payee's payments are refused (``SETTLEMENT_REJECTED``) and the rest of
the batch is sent again and settles."""

from __future__ import annotations

import asyncio

from eth_account import Account

from devtools.harness.collect import collect
from devtools.harness.load import request
from schemas.onchain import ZERO_ADDRESS
from tests.faults.admin import blacklist
from tests.faults.conftest import Faults
from tests.faults.pipeline import MAX_AMOUNT
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import publish
from tests.faults.verdict import assert_invariants

pytestmark = MARKS

BATCH = 200
BLACKLISTED_PER_BATCH = 3


def test_zero_and_blacklisted_payees_inside_merged_batches_of_200(faults: Faults) -> None:
    # Batches wait up to 3 s, so the payments published at once are sent in few
    # transactions of up to batch_max_payments (200) each.
    p = faults.pipeline(batch_wait_ms=3_000, batch_max_payments=BATCH)
    p.start(workers=1)
    payers = p.payers(10)
    p.fund(payers)
    blacklisted = str(Account.create().address)
    asyncio.run(blacklist(p, blacklisted))
    p.mark(f"token blacklisted {blacklisted}")
    count = scaled(BATCH)
    payees = [str(Account.create().address) for _ in range(20)]
    bad = {0: ZERO_ADDRESS} | {
        i: blacklisted
        for i in p.rng.sample(range(1, count), count // BATCH * BLACKLISTED_PER_BATCH)
    }
    requests = [
        request(
            payers[i % len(payers)],
            bad.get(i) or p.rng.choice(payees),
            p.rng.randint(1, MAX_AMOUNT),
        )
        for i in range(count)
    ]
    publish(p.settings, requests, documented=True)
    p.mark(f"published {count} payments, {len(bad)} of them to bad payees")
    ids = [str(r.payment_id) for r in requests]
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    traces = p.collector.traces(ids)
    codes = {i: traces[ids[i]].code for i in range(count)}
    assert codes[0] == "PAYEE_NOT_PAYABLE"
    assert {codes[i] for i in bad if i} == {"SETTLEMENT_REJECTED"}
    settled = [traces[ids[i]] for i in range(count) if i not in bad]
    assert all(t.code is None for t in settled), {t.code for t in settled}
    # Refused on chain, not up front: each was sent in a batch and reverted it.
    # (How many batches a transaction merges depends on timing: not checked.)
    refused = collect(p.settings, {ids[i] for i in bad if i}, timeout_s=30).failed
    assert len(refused) == len(bad) - 1
    assert all(
        f"payee {blacklisted.lower()} cannot receive the token" in r["reason"]
        and "TransferFailed" in r["reason"]
        for r in refused.values()
    ), refused

"""Keys apart: every batch here is above the approval threshold (0), so each
needs the approval signer's M signatures, and the worker holds no approval key.

- Without the signer, settlement waits: nothing fails, every payment stays
  held, and once the signer is up every payment settles.
- The signer refuses what its policy does not allow: batches above its
  per-batch cap are split until they fit, a payment above the cap alone fails
  (``SIGNER_REFUSED``), and so does every payment to a payee it does not allow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from eth_account import Account

from devtools.harness.isolated import free_port
from devtools.harness.load import request
from tests.faults.conftest import Faults
from tests.faults.pipeline import MAX_AMOUNT, FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import publish
from tests.faults.verdict import assert_invariants

pytestmark = MARKS

CAP = 4 * MAX_AMOUNT  # the signer's per-batch cap: batches of a few payments at most
WAIT_S = 15.0  # three sweeps (batch_timeout_s = 5)


def _pipeline(faults: Faults, tmp_path: Path, **policy: object) -> FaultPipeline:
    path = tmp_path / "signer-policy.json"
    base = {"max_batch_amount": CAP, "max_daily_amount": 10**15, "allowed_payees": None}
    path.write_text(json.dumps({**base, **policy}))
    return faults.pipeline(
        chain_approval_threshold=0, signer_port=free_port(), signer_policy_file=path
    )


def test_without_the_signer_settlement_waits_and_nothing_fails(
    faults: Faults, tmp_path: Path
) -> None:
    p = _pipeline(faults, tmp_path)
    p.start(workers=1)
    payers = p.payers(4)
    p.fund(payers)
    payees = [str(Account.create().address) for _ in range(5)]
    count = scaled(30)
    requests = [
        request(payers[i % len(payers)], p.rng.choice(payees), p.rng.randint(1, MAX_AMOUNT))
        for i in range(count)
    ]
    publish(p.settings, requests, documented=True)
    ids = [str(r.payment_id) for r in requests]
    p.mark(f"published {count} payments; no signer runs")
    time.sleep(WAIT_S)
    assert p.collector.finished(ids) == 0, "a payment ended while no signer could approve it"
    p.start_signer()
    assert_invariants(p, ids, timeout_s=120 + count / 10)
    traces = p.collector.traces(ids)
    assert all(t.code is None for t in traces.values()), {t.code for t in traces.values()}


def test_the_signer_refuses_what_its_policy_does_not_allow(faults: Faults, tmp_path: Path) -> None:
    payees = [str(Account.create().address) for _ in range(5)]
    stranger = str(Account.create().address)
    p = _pipeline(faults, tmp_path, allowed_payees=payees)
    p.start(workers=1)
    p.start_signer()
    payers = p.payers(4)
    p.fund(payers)
    count = scaled(40)
    requests = [
        request(payers[i % len(payers)], p.rng.choice(payees), p.rng.randint(1, MAX_AMOUNT))
        for i in range(count)
    ]
    over_cap = request(payers[0], payees[0], CAP + 1)
    to_stranger = [request(payers[1], stranger, p.rng.randint(1, MAX_AMOUNT)) for _ in range(3)]
    requests += [over_cap, *to_stranger]
    publish(p.settings, requests, documented=True)
    p.mark(f"published {len(requests)} payments, one over the cap, 3 to a stranger")
    ids = [str(r.payment_id) for r in requests]
    assert_invariants(p, ids, timeout_s=120 + count / 10)
    codes = {i: t.code for i, t in p.collector.traces(ids).items()}
    refused = {str(over_cap.payment_id)} | {str(r.payment_id) for r in to_stranger}
    assert {codes[i] for i in refused} == {"SIGNER_REFUSED"}
    assert {codes[i] for i in ids if i not in refused} == {None}

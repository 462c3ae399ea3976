"""Keys apart: every batch here is above the approval threshold (0), so each
needs the approval signer's M signatures, and the worker holds no approval key.

- Without the signer, settlement waits: nothing fails, every payment stays
  held, and once the signer is up every payment settles.
- The signer refuses what its policy does not allow: batches above its
  per-batch cap are split until they fit, a payment above the cap alone fails
  (``SIGNER_REFUSED``), and so does every payment to a payee it does not allow.

Both run in one pipeline: first without the signer, then with it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from eth_account import Account

from devtools.harness.isolated import free_port
from devtools.harness.load import request
from schemas.payments import PaymentRequested
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


def test_settlement_waits_for_the_signer_and_it_refuses_what_its_policy_does_not_allow(
    faults: Faults, tmp_path: Path
) -> None:
    payees = [str(Account.create().address) for _ in range(5)]
    stranger = str(Account.create().address)
    p = _pipeline(faults, tmp_path, allowed_payees=payees)
    p.start(workers=1)
    payers = p.payers(4)
    p.fund(payers)

    def payments(count: int) -> list[PaymentRequested]:
        return [
            request(payers[i % len(payers)], p.rng.choice(payees), p.rng.randint(1, MAX_AMOUNT))
            for i in range(count)
        ]

    waiting = payments(scaled(30))
    publish(p.settings, waiting, documented=True)
    p.mark(f"published {len(waiting)} payments; no signer runs")
    time.sleep(WAIT_S)
    waited = [str(r.payment_id) for r in waiting]
    assert p.collector.finished(waited) == 0, "a payment ended while no signer could approve it"

    p.start_signer()
    over_cap = request(payers[0], payees[0], CAP + 1)
    to_stranger = [request(payers[1], stranger, p.rng.randint(1, MAX_AMOUNT)) for _ in range(3)]
    later = [*payments(scaled(30)), over_cap, *to_stranger]
    publish(p.settings, later, documented=True)
    p.mark(f"published {len(later)} more, one over the cap, 3 to a payee not allowed")
    ids = waited + [str(r.payment_id) for r in later]
    assert_invariants(p, ids, timeout_s=120 + len(ids) / 10)
    codes = {i: t.code for i, t in p.collector.traces(ids).items()}
    refused = {str(over_cap.payment_id)} | {str(r.payment_id) for r in to_stranger}
    assert {codes[i] for i in refused} == {"SIGNER_REFUSED"}
    assert {codes[i] for i in ids if i not in refused} == {None}  # split batches settle

"""Ending a MISMATCH (a ``review.decisions`` record with verdict ACCEPT or
REJECT, applied in the payment's partition by the review stage).

The chain paid the payment's sequence otherwise than requested (another payee,
amount or fee); the reconciler kept its hold (``streams/stages/reconcile.py``).

- ACCEPT: the chain's payout is the payment's settlement. The hold is captured
  (the payer pays the payment's amount, as for any settlement) and
  ``payments.settled`` carries the request's facts with the chain's payout in
  its ``resolution``; ``payments.finalized`` follows at once if the listener
  already told the payout final, else when it does.
- REJECT: it is not. The hold is released (the payer pays nothing) and the
  payment fails with ``SETTLEMENT_MISMATCH``, the chain's payout in its
  ``resolution``.

Either way the ledger books what the chain paid (to its payee and the fee
recipient) and the difference from what the payer was charged goes to the
platform's suspense account (``services/store/ledger.py``), so the ledger
agrees with the chain to the unit.
"""

from __future__ import annotations

from datetime import datetime

from schemas.base import outcome_event_id
from schemas.chain import ReconciliationAlert
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import PaymentFailed, Resolution
from schemas.review import ReviewDecision
from schemas.topics import (
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from services.errors import require
from streams.outcomes import Emit, Outcome
from streams.stages.settled import finalized_record, settled_record
from streams.state import Balance, PaymentState, Status


def resolve(
    state: PaymentState, decision: ReviewDecision, balance: Balance, home: int, now: datetime
) -> tuple[PaymentState, Balance, Outcome]:
    """ACCEPT or REJECT applied to a payment in MISMATCH: its new state, its
    payer's balance (the hold captured or released) and the outcome, published
    to the payer's partition ``home``."""
    alert = ReconciliationAlert.model_validate_json(state.outputs[RECONCILIATION_ALERTS])
    chain = alert.chain
    require(chain is not None, "MISMATCH of %s without the chain's payout", state.payment_id)
    assert chain is not None  # for mypy: require raised otherwise
    resolution = Resolution(
        verdict="ACCEPT" if decision.verdict == "ACCEPT" else "REJECT",
        decided_by=decision.decided_by,
        note=decision.note,
        decided_at=decision.decided_at,
        chain=chain,
    )
    key = str(state.payment_id)
    if resolution.verdict == "ACCEPT":
        settled = settled_record(state, chain, now, resolution)
        final = state.moved(Status.CONFIRMED).moved(Status.SETTLED)
        final = final.with_output(PAYMENTS_SETTLED, settled)
        emits = [Emit(PAYMENTS_SETTLED, state.payer_account, settled, home)]
        block_hash, _, head = (state.final or "").partition(":")
        if state.final is not None and block_hash == chain.block_hash:  # final already
            finalized = finalized_record(settled, now, int(head))
            final = final.with_output(PAYMENTS_FINALIZED, finalized)
            emits.append(Emit(PAYMENTS_FINALIZED, state.payer_account, finalized, home))
        outcome = Outcome(emits=tuple(emits), note="mismatch accepted")
        return final, balance.capture(key), outcome
    failed = _failed(state, resolution, now)
    final = state.moved(Status.FAILED).with_output(PAYMENTS_FAILED, failed)
    emit = Emit(PAYMENTS_FAILED, state.payer_account, failed, home)
    return final, balance.release(key), Outcome(emits=(emit,), note=failed.code.value)


def _failed(state: PaymentState, resolution: Resolution, now: datetime) -> PaymentFailed:
    code = FailureCode.SETTLEMENT_MISMATCH
    note = f": {resolution.note}" if resolution.note else ""
    return PaymentFailed(
        event_id=outcome_event_id("failed", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        amount=state.amount,
        code=code,
        reason=(FAILURE_REASONS[code] + note)[:1000],
        requested_at=state.requested_at,
        failed_at=now,
        resolution=resolution,
    )

"""Submission stage (consumes ``chain.submitted``): mark payments SUBMITTED
with their sequence number, or fail them and release their holds when their
refusal is proven (``submit.py`` sends ``REJECTED`` only with proof, or for a
``PAYMENT_ID_CONFLICT``).

A payment already SUBMITTED is never failed by a later ``REJECTED``: that is
another transaction's refusal (a re-send of its batch), no proof that the
transaction which carried it will not pay. Its end is the reconciler's.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.base import conflict_event_id, outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import BatchSubmitted, PaymentFailed, SubmittedPayment
from schemas.topics import PAYMENTS_FAILED
from streams.outcomes import Emit, Outcome, dead, ignored, merged, republish
from streams.state import NO_BALANCE, Balance, PaymentState, Status, payment_key
from streams.writebehind import WriteBehind


@dataclass
class SubmittedDeps:
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    clock: Callable[[], datetime]


def handle_submitted(raw: bytes, deps: SubmittedDeps) -> Outcome:
    """Each payment of the record in turn; each balance it touches is written
    once (``streams/writebehind.py``)."""
    try:
        record = BatchSubmitted.model_validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid chain.submitted record: {exc}"[:1000])
    balances = WriteBehind(deps.balances)
    outcomes: list[Outcome] = []
    try:
        for payment in record.payments:
            outcomes.append(_one(record, payment, deps, balances))
    finally:
        balances.flush()
    return merged(outcomes)


def _one(
    record: BatchSubmitted,
    payment: SubmittedPayment,
    deps: SubmittedDeps,
    balances: MutableMapping[str, Balance],
) -> Outcome:
    key = payment_key(payment.payer_account, payment.payment_id)
    state = deps.payments.get(key)
    if state is None:
        return ignored("unknown payment")
    if None not in (state.sequence, payment.sequence) and state.sequence != payment.sequence:
        return ignored("another sequence")  # cannot happen: a claim is kept for good
    if record.outcome == "SUBMITTED":
        if state.status != Status.SCORED:
            return ignored("already past SUBMITTED")
        deps.payments[key] = state.moved(
            Status.SUBMITTED, tx_hash=record.tx_hash, sequence=payment.sequence
        )
        return ignored("submitted")
    payer = state.payer_account
    balance = balances.get(payer, NO_BALANCE)
    if state.status == Status.SUBMITTED:
        return ignored("already submitted: a refusal is no proof against its transaction")
    if state.status != Status.SCORED:
        balances[payer] = balance.aligned(state)
        return republish(state.outputs, (PAYMENTS_FAILED,), payer, "terminal")
    balances[payer] = balance.release(str(state.payment_id))
    failed = _failed(state, record, deps.clock())
    deps.payments[key] = state.moved(Status.FAILED).with_output(PAYMENTS_FAILED, failed)
    return Outcome(emits=(Emit(PAYMENTS_FAILED, payer, failed),), note=failed.code)


def _failed(state: PaymentState, record: BatchSubmitted, now: datetime) -> PaymentFailed:
    code = record.code or FailureCode.SETTLEMENT_REJECTED
    conflict = code == FailureCode.PAYMENT_ID_CONFLICT
    return PaymentFailed(
        # A conflict answers this request, not the payment whose id it reused.
        event_id=conflict_event_id(state.payment_id, state.request_digest or "")
        if conflict
        else outcome_event_id("failed", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        amount=state.amount,
        code=code,
        reason=record.reason or FAILURE_REASONS[code],
        requested_at=state.requested_at,
        failed_at=now,
    )

"""Submission stage (consumes ``chain.submitted``): mark payments SUBMITTED, or
fail them and release their holds when the chain refused the batch."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.base import outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import PaymentFailed, PaymentSubmitted
from schemas.topics import PAYMENTS_FAILED
from streams.outcomes import Emit, Outcome, dead, ignored, republish
from streams.state import Balance, PaymentState, Status


@dataclass
class SubmittedDeps:
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    clock: Callable[[], datetime]


def handle_submitted(raw: bytes, deps: SubmittedDeps) -> Outcome:
    try:
        record = PaymentSubmitted.model_validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid chain.submitted record: {exc}"[:1000])
    key = str(record.payment_id)
    state = deps.payments.get(key)
    if state is None or state.sequence != record.sequence:
        return ignored("unknown payment or sequence")
    if record.outcome == "SUBMITTED":
        if state.status != Status.SCORED:
            return ignored("already past SUBMITTED")
        deps.payments[key] = state.moved(Status.SUBMITTED, tx_hash=record.tx_hash)
        return ignored("submitted")
    balance = deps.balances.get(state.payer_account, Balance())
    if state.status not in (Status.SCORED, Status.SUBMITTED):
        deps.balances[state.payer_account] = balance.aligned(state)
        return republish(state.outputs, (PAYMENTS_FAILED,), state.payer_account, "terminal")
    deps.balances[state.payer_account] = balance.release(key)
    code = record.code or FailureCode.SETTLEMENT_REJECTED
    failed = PaymentFailed(
        event_id=outcome_event_id("failed", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        amount=state.amount,
        code=code,
        reason=record.reason or FAILURE_REASONS[code],
        requested_at=state.requested_at,
        failed_at=deps.clock(),
    )
    deps.payments[key] = state.moved(Status.FAILED).with_output(PAYMENTS_FAILED, failed)
    return Outcome(emits=(Emit(PAYMENTS_FAILED, state.payer_account, failed),), note=code.value)

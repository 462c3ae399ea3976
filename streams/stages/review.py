"""Review stage (consumes ``review.decisions``): the decision that ends a hold
for review. APPROVE publishes the payment to ``fraud.scored`` (it goes on to a
batch like any approved payment); DENY and EXPIRE fail it and release its hold
(``REVIEW_DENIED``, ``REVIEW_EXPIRED``). ACCEPT and REJECT end a MISMATCH
instead (``streams/stages/mismatch.py``).

The first decision applied wins. A decision for a payment that is no longer in
REVIEW publishes again what the first one published (a replay after a crash
loses nothing); one for a payment nobody holds goes to the DLQ. Decisions live
in their payer's partition, like the payment's state: one read elsewhere is
re-routed there first.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.base import outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.partitioning import partition_for
from schemas.payments import Approval, PaymentFailed, PaymentScored
from schemas.review import ReviewDecision, ReviewHeld
from schemas.topics import (
    FRAUD_SCORED,
    PAYMENTS_FAILED,
    PAYMENTS_REVIEW,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
    REVIEW_DECISIONS,
)
from services.settings import Settings
from streams.outcomes import Emit, Outcome, dead, ignored, republish
from streams.stages.mismatch import resolve
from streams.state import NO_BALANCE, Balance, PaymentState, Status, payment_key


@dataclass
class ReviewDeps:
    settings: Settings
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    clock: Callable[[], datetime]


def handle_decision(raw: bytes, partition: int | None, deps: ReviewDeps) -> Outcome:
    """Apply one ``review.decisions`` record read from ``partition`` (None: the
    caller has no Kafka record and it counts as read on the payer's)."""
    try:
        decision = ReviewDecision.model_validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid review.decisions record: {exc.error_count()} errors: {exc}"[:1000])
    payer = decision.payer_account
    home = partition_for(payer, deps.settings.kafka_partitions)
    if partition is not None and partition != home:
        return Outcome(emits=(Emit(REVIEW_DECISIONS, payer, decision, home),), note="rerouted")
    key = payment_key(payer, decision.payment_id)
    state = deps.payments.get(key)
    on_mismatch = decision.verdict in ("ACCEPT", "REJECT")
    held_in, marker = (
        (Status.MISMATCH, RECONCILIATION_ALERTS)
        if on_mismatch
        else (Status.REVIEW, PAYMENTS_REVIEW)
    )
    if state is None or marker not in state.outputs:
        return dead(f"no payment {decision.payment_id} of {payer} was held in {held_in}")
    if state.status != held_in:
        balance = deps.balances.get(payer, NO_BALANCE)
        deps.balances[payer] = balance.aligned(state)
        topics = (
            (PAYMENTS_SETTLED, PAYMENTS_FAILED) if on_mismatch else (FRAUD_SCORED, PAYMENTS_FAILED)
        )
        return republish(state.outputs, topics, payer, f"already decided: {state.status}")
    if on_mismatch:
        balance = deps.balances.get(payer, NO_BALANCE)
        final, ended, outcome = resolve(state, decision, balance, home, deps.clock())
        deps.payments[key], deps.balances[payer] = final, ended
        return outcome
    held = ReviewHeld.model_validate_json(state.outputs[PAYMENTS_REVIEW])
    now = deps.clock()
    if decision.verdict == "EXPIRE" and now < held.expires_at:
        return ignored("not expired yet")
    if decision.verdict == "APPROVE":
        return _approve(key, state, held, decision, home, deps)
    return _fail(key, state, held, decision, home, deps)


def _approve(
    key: str,
    state: PaymentState,
    held: ReviewHeld,
    decision: ReviewDecision,
    home: int,
    deps: ReviewDeps,
) -> Outcome:
    approval = Approval(
        decided_by=decision.decided_by, note=decision.note, decided_at=decision.decided_at
    )
    scored = PaymentScored(
        event_id=outcome_event_id("scored", state.payment_id),
        request=held.request,
        fraud=held.fraud,
        scored_at=deps.clock(),
        approval=approval,
        fee=state.fee,
    )
    deps.payments[key] = state.moved(Status.SCORED).with_output(FRAUD_SCORED, scored)
    emit = Emit(FRAUD_SCORED, state.payer_account, scored, home)
    return Outcome(emits=(emit,), note="review approved")


def _fail(
    key: str,
    state: PaymentState,
    held: ReviewHeld,
    decision: ReviewDecision,
    home: int,
    deps: ReviewDeps,
) -> Outcome:
    code = FailureCode.REVIEW_EXPIRED if decision.verdict == "EXPIRE" else FailureCode.REVIEW_DENIED
    reason = FAILURE_REASONS[code] + (f": {decision.note}" if decision.note else "")
    failed = PaymentFailed(
        event_id=outcome_event_id("failed", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        amount=state.amount,
        code=code,
        reason=reason[:1000],
        fraud=held.fraud,
        requested_at=state.requested_at,
        failed_at=deps.clock(),
    )
    balance = deps.balances.get(state.payer_account, NO_BALANCE)
    deps.balances[state.payer_account] = balance.release(str(state.payment_id))
    deps.payments[key] = state.moved(Status.FAILED).with_output(PAYMENTS_FAILED, failed)
    emit = Emit(PAYMENTS_FAILED, state.payer_account, failed, home)
    return Outcome(emits=(emit,), note=code.value)

"""Reconciler (consumes ``chain.events``): match confirmed settlements with the
payments the engine sent, capture holds, credit deposits, publish outcomes.
Disagreements are published as alerts, never silently accepted: a payment the
chain paid otherwise than requested keeps its hold in MISMATCH until an
operator accepts or rejects the chain's payout (``streams/stages/mismatch.py``)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from schemas.base import outcome_event_id
from schemas.chain import (
    CHAIN_EVENT,
    DepositConfirmed,
    EventOrphaned,
    ReconciliationAlert,
    SettlementConfirmed,
)
from schemas.payments import ChainPayout, PaymentSettled, Resolution
from schemas.topics import PAYMENTS_FAILED, PAYMENTS_SETTLED, RECONCILIATION_ALERTS
from streams.outcomes import Emit, Outcome, dead, ignored, republish
from streams.state import Balance, PaymentState, Status, payment_key

AlertKind = Literal["UNKNOWN_SEQUENCE", "MISMATCH", "ORPHANED", "TIMEOUT"]


@dataclass
class ReconcileDeps:
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    clock: Callable[[], datetime]


def _alert(key: str, kind: AlertKind, detail: str, **fields: object) -> Outcome:
    alert = ReconciliationAlert(kind=kind, detail=detail, **fields)
    return Outcome(emits=(Emit(RECONCILIATION_ALERTS, key, alert),), note=f"alert:{kind}")


def handle_chain_event(raw: bytes, key: str, deps: ReconcileDeps) -> Outcome:
    try:
        event = CHAIN_EVENT.validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid chain.events record: {exc}"[:1000])
    if isinstance(event, DepositConfirmed):
        return _deposit(event, deps)
    if isinstance(event, EventOrphaned):
        return _alert(
            key,
            "ORPHANED",
            f"reorg removed a confirmed event in {event.tx_hash}",
            sequence=event.sequence,
            tx_hash=event.tx_hash,
        )
    return _settled(event, key, deps)


def chain_payout(event: SettlementConfirmed) -> ChainPayout:
    return ChainPayout(
        sequence=event.sequence,
        payee_address=event.payee_address,
        amount=event.amount,
        fee=event.fee,
        batch_id=event.batch_id,
        tx_hash=event.tx_hash,
        block_number=event.block_number,
        block_hash=event.block_hash,
    )


def settled_record(
    state: PaymentState, chain: ChainPayout, now: datetime, resolution: Resolution | None = None
) -> PaymentSettled:
    """A payment's ``payments.settled`` record: the request's facts, where the
    chain paid it, and (for a resolved MISMATCH) the operator's resolution."""
    return PaymentSettled(
        event_id=outcome_event_id("settled", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        payee_address=state.payee_address,
        amount=state.amount,
        fee=state.fee,
        currency=state.currency,
        merchant_id=state.merchant_id,
        tx_hash=chain.tx_hash,
        block_number=chain.block_number,
        block_hash=chain.block_hash,
        batch_id=chain.batch_id,
        sequence=chain.sequence,
        requested_at=state.requested_at,
        settled_at=now,
        latency_ms=max(0, int((now - state.requested_at).total_seconds() * 1000)),
        resolution=resolution,
    )


def _mismatch(
    entry: str, state: PaymentState, event: SettlementConfirmed, key: str, deps: ReconcileDeps
) -> Outcome:
    """The chain paid the payment's sequence otherwise than requested. A payment
    still held moves to MISMATCH (its hold kept) until an operator decides
    (``streams/stages/mismatch.py``); one already ended only raises the alert."""
    detail = (
        f"chain paid {event.amount} (fee {event.fee}) to {event.payee_address}, engine "
        f"expected {state.amount} (fee {state.fee}) to {state.payee_address}"
    )
    held = state.status in (Status.SCORED, Status.SUBMITTED)
    alert = ReconciliationAlert(
        **({"event_id": outcome_event_id("mismatch", state.payment_id)} if held else {}),
        kind="MISMATCH",
        detail=detail if held else f"{detail}; the payment is {state.status} in the engine",
        sequence=event.sequence,
        tx_hash=event.tx_hash,
        payment_id=state.payment_id,
        payer_account=state.payer_account,
        chain=chain_payout(event),
        held=held,
    )
    if held:
        moved = state.moved(Status.MISMATCH, tx_hash=event.tx_hash, sequence=event.sequence)
        deps.payments[entry] = moved.with_output(RECONCILIATION_ALERTS, alert)
    emit = Emit(RECONCILIATION_ALERTS, key, alert)
    return Outcome(emits=(emit,), note="alert:MISMATCH")


def _deposit(event: DepositConfirmed, deps: ReconcileDeps) -> Outcome:
    balance = deps.balances.get(event.account, Balance())
    credited = balance.credit(f"{event.tx_hash}:{event.log_index}", event.amount)
    if credited == balance:
        return ignored("duplicate deposit")
    deps.balances[event.account] = credited
    return ignored("deposit credited")


def _settled(event: SettlementConfirmed, key: str, deps: ReconcileDeps) -> Outcome:
    entry = (
        payment_key(event.payer_account, event.payment_id)
        if event.payment_id is not None and event.payer_account is not None
        else None
    )
    state = deps.payments.get(entry) if entry else None
    if entry is None or state is None:
        return _alert(
            key,
            "UNKNOWN_SEQUENCE",
            "paid on chain, unknown to the engine",
            sequence=event.sequence,
            tx_hash=event.tx_hash,
        )
    if state.status == Status.SETTLED or RECONCILIATION_ALERTS in state.outputs:
        # Settled, or held in MISMATCH (perhaps resolved since): the same records again.
        balance = deps.balances.get(state.payer_account, Balance())
        deps.balances[state.payer_account] = balance.aligned(state)
        topics = (RECONCILIATION_ALERTS, PAYMENTS_SETTLED, PAYMENTS_FAILED)
        return republish(state.outputs, topics, state.payer_account, "duplicate")
    if (state.payee_address, state.amount, state.fee) != (
        event.payee_address,
        event.amount,
        event.fee,
    ):
        return _mismatch(entry, state, event, key, deps)
    if state.status not in (Status.SCORED, Status.SUBMITTED):
        return _alert(
            key,
            "MISMATCH",
            f"paid on chain but {state.status} in the engine",
            sequence=event.sequence,
            tx_hash=event.tx_hash,
            payment_id=state.payment_id,
            payer_account=state.payer_account,
            chain=chain_payout(event),
        )
    if state.status == Status.SCORED:  # chain.submitted not seen yet
        state = state.moved(Status.SUBMITTED, tx_hash=event.tx_hash, sequence=event.sequence)
    now = deps.clock()
    balance = deps.balances.get(state.payer_account, Balance())
    deps.balances[state.payer_account] = balance.capture(str(state.payment_id))
    settled = settled_record(state, chain_payout(event), now)
    final = state.moved(Status.CONFIRMED).moved(Status.SETTLED)
    final = final.with_output(PAYMENTS_SETTLED, settled)
    deps.payments[entry] = final
    emit = Emit(PAYMENTS_SETTLED, state.payer_account, settled)
    return Outcome(emits=(emit,), note="settled")

"""Reconciler (consumes ``chain.events``): match confirmed settlements with the
payments the engine sent, capture holds, publish outcomes; deposits and what
reorgs undo are ``streams/stages/reorg.py``.
Disagreements are published as alerts, never silently accepted: a payment the
chain paid otherwise than requested keeps its hold in MISMATCH until an
operator accepts or rejects the chain's payout (``streams/stages/mismatch.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import ValidationError

from schemas.base import outcome_event_id
from schemas.chain import (
    CHAIN_EVENT,
    ChainEventRecord,
    ChainEvents,
    DepositConfirmed,
    EventOrphaned,
    ReconciliationAlert,
    SettlementConfirmed,
    SettlementFinal,
)
from schemas.topics import PAYMENTS_FAILED, PAYMENTS_SETTLED, RECONCILIATION_ALERTS
from streams.outcomes import Emit, Outcome, dead, merged, republish
from streams.stages.reorg import credit_deposit, finalized, orphaned, reincluded
from streams.stages.settled import ReconcileDeps, chain_payout, settled_record
from streams.state import NO_BALANCE, PaymentState, Status, payment_key
from streams.writebehind import WriteBehind

AlertKind = Literal["UNKNOWN_SEQUENCE", "MISMATCH"]


def _alert(key: str, kind: AlertKind, detail: str, **fields: object) -> Outcome:
    alert = ReconciliationAlert(kind=kind, detail=detail, **fields)
    return Outcome(emits=(Emit(RECONCILIATION_ALERTS, key, alert),), note=f"alert:{kind}")


def handle_chain_events(raw: bytes, key: str, deps: ReconcileDeps) -> Outcome:
    """A record of the listener: its events decided in order, each balance they
    touch written once (``streams/writebehind.py``). A record of the earlier
    shape is one event, decided under the record's ``key``."""
    try:
        events = [(e.key, e.event) for e in ChainEvents.model_validate_json(raw).events]
    except ValidationError as exc:
        if b'"events"' in raw:
            return dead(f"invalid chain.events record: {exc}"[:1000])
        return handle_chain_event(raw, key, deps)
    balances = WriteBehind(deps.balances)
    batch = replace(deps, balances=balances)
    outcomes: list[Outcome] = []
    try:
        for event_key, event in events:
            outcomes.append(decide(event, event_key, batch))
    finally:
        balances.flush()
    return merged(outcomes)


def handle_chain_event(raw: bytes, key: str, deps: ReconcileDeps) -> Outcome:
    """One chain event, as the listener wrote each before its records carried
    a poll's events of a partition."""
    try:
        event = CHAIN_EVENT.validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid chain.events record: {exc}"[:1000])
    return decide(event, key, deps)


def decide(event: ChainEventRecord, key: str, deps: ReconcileDeps) -> Outcome:
    if isinstance(event, DepositConfirmed):
        return credit_deposit(event, deps)
    if isinstance(event, EventOrphaned):
        return orphaned(event, key, deps)
    if isinstance(event, SettlementFinal):
        return finalized(event, deps)
    return _settled(event, key, deps)


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
    if state.status == Status.SETTLED:
        moved = reincluded(entry, state, event, deps)  # a reorg re-included its transaction
        if moved is not None:
            return moved
    if state.status == Status.SETTLED or RECONCILIATION_ALERTS in state.outputs:
        # Settled, or held in MISMATCH (perhaps resolved since): the same records again.
        balance = deps.balances.get(state.payer_account, NO_BALANCE)
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
    balance = deps.balances.get(state.payer_account, NO_BALANCE)
    deps.balances[state.payer_account] = balance.capture(str(state.payment_id))
    settled = settled_record(state, chain_payout(event), now)
    final = state.moved(Status.CONFIRMED).moved(Status.SETTLED)
    final = final.with_output(PAYMENTS_SETTLED, settled)
    deps.payments[entry] = final
    emit = Emit(PAYMENTS_SETTLED, state.payer_account, settled)
    return Outcome(emits=(emit,), note="settled")

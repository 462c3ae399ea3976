"""What the reconciler and the mismatch stage share: their dependencies, and a
payment's ``payments.settled`` record from what the chain paid."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import outcome_event_id
from schemas.chain import SettlementConfirmed
from schemas.payments import ChainPayout, PaymentFinalized, PaymentSettled, Resolution
from streams.state import RECENT_DEPOSITS, Balance, PaymentState


def _keep(_batch_id: int) -> None:
    return None


@dataclass
class ReconcileDeps:
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    clock: Callable[[], datetime]
    # A reorg removed this batch's transaction: the sweeper may send it again now.
    forget_batch: Callable[[int], None] = _keep
    deposit_memory: int = RECENT_DEPOSITS  # per account (the ledger remembers all)
    # The credit numbers the ledger booked for the deposits of the record being
    # decided that their balances do not remember (``streams/deposits.py``).
    booked: Mapping[str, int] = field(default_factory=dict)


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


def payment_facts(state: PaymentState) -> dict[str, Any]:
    """The request's facts that every record of the payment's settlement carries."""
    return {
        "payment_id": state.payment_id,
        "payer_account": state.payer_account,
        "payee_address": state.payee_address,
        "amount": state.amount,
        "fee": state.fee,
        "currency": state.currency,
        "merchant_id": state.merchant_id,
    }


def settled_record(
    state: PaymentState, chain: ChainPayout, now: datetime, resolution: Resolution | None = None
) -> PaymentSettled:
    """A payment's ``payments.settled`` record: the request's facts, where the
    chain paid it, and (for a resolved MISMATCH) the operator's resolution."""
    return PaymentSettled(
        reorgs=state.reorgs,
        event_id=settled_event_id(state, chain.tx_hash),
        **payment_facts(state),
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


def settled_event_id(state: PaymentState, tx_hash: str) -> uuid.UUID:
    """The same for every publication of this settlement; another after each
    reorg that undid one (it names the transaction and the count)."""
    if state.reorgs == 0:
        return outcome_event_id("settled", state.payment_id)
    return outcome_event_id(f"settled:{state.reorgs}:{tx_hash.lower()}", state.payment_id)


def finalized_record(settled: PaymentSettled, now: datetime, final_block: int) -> PaymentFinalized:
    """``payments.finalized`` for a published settlement: its facts, when the
    engine learnt it is final and the head that made it so."""
    shared = set(PaymentFinalized.model_fields) & set(PaymentSettled.model_fields)
    facts = settled.model_dump(include=shared - {"event_id", "schema_version", "occurred_at"})
    return PaymentFinalized(
        event_id=outcome_event_id(f"finalized:{settled.reorgs}", settled.payment_id),
        finalized_at=now,
        final_block_number=final_block,
        **facts,
    )

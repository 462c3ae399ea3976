"""``chain.events`` (from the chain listener) and ``reconciliation.alerts``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.base import AccountId, Address, Record
from schemas.money import MinorUnits
from schemas.payments import ChainPayout


class _OnChain(Record):
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str
    tx_hash: str
    log_index: Annotated[int, Field(ge=0)]


class SettlementConfirmed(_OnChain):
    """A ``PaymentSettled`` with ``confirmations_min`` blocks on top of it."""

    kind: Literal["SETTLED"] = "SETTLED"
    sequence: Annotated[int, Field(ge=0)]
    payer_ref: Annotated[int, Field(ge=0)]
    payee_address: Address
    amount: MinorUnits  # what the payer paid; the payee got amount - fee
    fee: Annotated[int, Field(ge=0)] = 0  # to the platform's fee recipient
    batch_id: Annotated[int, Field(ge=0)]
    # The payment that claimed the sequence (from PostgreSQL); None: no claim.
    payment_id: uuid.UUID | None = None
    payer_account: AccountId | None = None


class DepositConfirmed(_OnChain):
    """A ``Deposited`` with ``confirmations_min`` blocks on top of it."""

    kind: Literal["DEPOSIT"] = "DEPOSIT"
    account: AccountId
    depositor: Address
    amount: MinorUnits


class EventOrphaned(_OnChain):
    """A reorg deeper than ``confirmations_min`` removed an event already emitted."""

    kind: Literal["ORPHANED"] = "ORPHANED"
    sequence: int | None = None
    account: str | None = None
    amount: MinorUnits


ChainEventRecord = Annotated[
    SettlementConfirmed | DepositConfirmed | EventOrphaned, Field(discriminator="kind")
]
CHAIN_EVENT = TypeAdapter(ChainEventRecord)


class ReconciliationAlert(Record):
    """``reconciliation.alerts``: the chain and the engine disagree."""

    # UNREPRESENTABLE: a log the engine cannot represent (an amount beyond its
    # range, a sequence naming a partition that does not exist); the listener
    # moved on past it.
    kind: Literal["UNKNOWN_SEQUENCE", "MISMATCH", "ORPHANED", "TIMEOUT", "UNREPRESENTABLE"]
    detail: str
    sequence: int | None = None
    tx_hash: str | None = None
    # A MISMATCH names its payment and what the chain paid. A payment still held
    # (SCORED or SUBMITTED) is moved to MISMATCH, its hold kept, until an
    # operator accepts or rejects the chain's payout.
    payment_id: uuid.UUID | None = None
    payer_account: AccountId | None = None
    chain: ChainPayout | None = None
    held: bool = False

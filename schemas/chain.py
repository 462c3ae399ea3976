"""``chain.events`` (from the chain listener) and ``reconciliation.alerts``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.base import AccountId, Address, Frozen, Record
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
    """A ``Deposited`` in a block ``confirmations_min`` deep (the block itself is
    the first confirmation)."""

    kind: Literal["DEPOSIT"] = "DEPOSIT"
    account: AccountId
    depositor: Address
    amount: MinorUnits
    # Its transaction and place among that transaction's deposits: the same when
    # a reorg re-includes the transaction at another block or log index.
    deposit_id: str


class EventOrphaned(_OnChain):
    """A reorg removed an event already emitted, and the canonical chain does
    not hold it (yet): ``block_*`` name the removed block."""

    kind: Literal["ORPHANED"] = "ORPHANED"
    sequence: int | None = None
    account: str | None = None
    amount: MinorUnits
    deposit_id: str | None = None  # a removed deposit
    # A removed settlement: the payment that claimed its sequence.
    payment_id: uuid.UUID | None = None
    payer_account: AccountId | None = None


class SettlementFinal(_OnChain):
    """A ``PaymentSettled`` whose block is ``finality_depth`` deep (the block
    itself counts): ``final_block_number`` is the head that made it final."""

    kind: Literal["FINAL"] = "FINAL"
    sequence: Annotated[int, Field(ge=0)]
    final_block_number: Annotated[int, Field(ge=0)]
    payment_id: uuid.UUID | None = None
    payer_account: AccountId | None = None


ChainEventRecord = Annotated[
    SettlementConfirmed | DepositConfirmed | EventOrphaned | SettlementFinal,
    Field(discriminator="kind"),
]
CHAIN_EVENT = TypeAdapter(ChainEventRecord)


class KeyedChainEvent(Frozen):
    """One event of a ``chain.events`` record, with the key it is decided under:
    ``ref:<payer ref>`` (a settlement), ``seq:<sequence>`` (a settlement's
    finality or removal), the account (a deposit's)."""

    key: str
    event: ChainEventRecord


class ChainEvents(Record):
    """``chain.events``: what one poll of the chain listener found for one
    partition, in the order found (one record per partition and poll, keyed
    by its blocks). A record of the earlier shape, one event with its ``kind``
    at the top level, is read as that one event under the record's key."""

    events: Annotated[tuple[KeyedChainEvent, ...], Field(min_length=1)]


class DepositCredited(Record):
    """``deposits.credited``: the engine credited a confirmed deposit to its
    account (``credit`` counts the times it did: a deposit a reorg removed and
    the chain then re-included is credited again, with another event id)."""

    kind: Literal["CREDITED"] = "CREDITED"
    deposit_id: str
    account: AccountId
    amount: MinorUnits
    credit: Annotated[int, Field(ge=1)]
    tx_hash: str
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str


class DepositReversed(Record):
    """``deposits.credited``: a reorg removed a credited deposit from the chain;
    the credit is taken back. What the account's available balance could not
    cover is ``owed`` and the account is frozen until deposits repay it."""

    kind: Literal["REVERSED"] = "REVERSED"
    deposit_id: str
    account: AccountId
    amount: MinorUnits
    credit: Annotated[int, Field(ge=1)]  # the credit this reverses
    removed_block_number: Annotated[int, Field(ge=0)]
    removed_block_hash: str
    owed: MinorUnits = 0


DepositRecord = Annotated[DepositCredited | DepositReversed, Field(discriminator="kind")]
DEPOSIT_RECORD = TypeAdapter(DepositRecord)


def deposit_event_id(kind: str, deposit_id: str, credit: int) -> uuid.UUID:
    """The same for every publication of this credit or reversal of the deposit."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"deposit-{kind}:{deposit_id}:{credit}")


class ReconciliationAlert(Record):
    """``reconciliation.alerts``: the chain and the engine disagree."""

    # UNREPRESENTABLE: a log the engine cannot represent (an amount beyond its
    # range, a sequence naming a partition that does not exist); the listener
    # moved on past it.
    # FROZEN: a reversed deposit left its account owing; it refuses payments
    # until deposits repay what it owes. DEEP_REORG: a reorg replaced blocks
    # already told final; settlement is halted until an operator resumes it.
    kind: Literal[
        "UNKNOWN_SEQUENCE",
        "MISMATCH",
        "ORPHANED",
        "TIMEOUT",
        "UNREPRESENTABLE",
        "FROZEN",
        "DEEP_REORG",
    ]
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

"""The ledger rules: which balanced entries an outcome writes.

A settled payment of amount A with fee F writes payer -A, payee +(A - F),
platform fee +F: exactly what the contract moved. F is fixed when the payment
is scored, floor(A * f / 10,000) for a merchant whose rate is f basis points
(``fee_of``; the rounding remainder stays with the payee). A credited deposit
D writes account +D and treasury -D. A reorg that removed a settlement or a
credited deposit writes the same entries negated (``payments.reorged``, a
``DepositReversed``); a settlement or a credit that follows is booked anew. A
MISMATCH an operator resolved books what the chain paid: payee +(X - F'),
platform fee +F', the payer -C (C: the payment's amount if accepted, 0 if
rejected) and the platform's suspense account C - X (``resolution_entries``).
Every set of entries sums to zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from schemas.chain import DepositCredited, DepositReversed
from schemas.payments import PaymentFailed, PaymentReorged, PaymentSettled
from schemas.records import SinkRecord
from services.errors import require

FEE_ACCOUNT = "platform:fees"
TREASURY_ACCOUNT = "treasury:chain"
# What the platform is owed (positive) or out of pocket (negative) because the
# chain paid a payment otherwise than requested: recovered by hand.
SUSPENSE_ACCOUNT = "platform:suspense"
PLATFORM_ACCOUNTS = frozenset({FEE_ACCOUNT, TREASURY_ACCOUNT, SUSPENSE_ACCOUNT})
BPS = 10_000


def is_payer_account(account: str) -> bool:
    """A payer's account: what the treasury holds for someone (not the
    platform's accounts, not a payee's address)."""
    return account not in PLATFORM_ACCOUNTS and not account.startswith("0x")


@dataclass(frozen=True)
class Entry:
    event_id: uuid.UUID
    payment_id: uuid.UUID | None
    account: str
    kind: str  # payer | payee | fee | suspense | deposit | treasury
    amount: int  # signed minor units
    currency: str
    at: datetime


def fee_of(amount: int, fee_bps: int) -> int:
    require(0 <= fee_bps <= BPS, "fee %s bps out of range", fee_bps)
    return amount * fee_bps // BPS


def settlement_entries(
    event_id: uuid.UUID,
    payment_id: uuid.UUID,
    payer: str,
    payee: str,
    amount: int,
    currency: str,
    fee: int,
    at: datetime,
) -> list[Entry]:
    require(amount > 0, "settled amount must be positive: %s", amount)
    require(0 <= fee < amount, "fee %s not below the amount %s", fee, amount)
    entries = [
        Entry(event_id, payment_id, payer, "payer", -amount, currency, at),
        Entry(event_id, payment_id, payee, "payee", amount - fee, currency, at),
    ]
    if fee:
        entries.append(Entry(event_id, payment_id, FEE_ACCOUNT, "fee", fee, currency, at))
    return _balanced(entries)


def resolution_entries(
    event_id: uuid.UUID,
    payment_id: uuid.UUID,
    payer: str,
    charged: int,
    chain_payee: str,
    chain_amount: int,
    chain_fee: int,
    currency: str,
    at: datetime,
) -> list[Entry]:
    """A resolved MISMATCH: the chain's payout as it happened, the payer
    charged ``charged``, the difference to the suspense account."""
    require(0 <= chain_fee <= chain_amount, "fee %s above %s", chain_fee, chain_amount)
    require(charged >= 0, "charged %s", charged)
    entries = [
        Entry(event_id, payment_id, payer, "payer", -charged, currency, at),
        Entry(event_id, payment_id, chain_payee, "payee", chain_amount - chain_fee, currency, at),
        Entry(event_id, payment_id, FEE_ACCOUNT, "fee", chain_fee, currency, at),
        Entry(
            event_id, payment_id, SUSPENSE_ACCOUNT, "suspense", charged - chain_amount, currency, at
        ),
    ]
    return _balanced(entries)


def deposit_entries(
    event_id: uuid.UUID, account: str, amount: int, currency: str, at: datetime
) -> list[Entry]:
    require(amount > 0, "deposit must be positive: %s", amount)
    return _balanced(
        [
            Entry(event_id, None, account, "deposit", amount, currency, at),
            Entry(event_id, None, TREASURY_ACCOUNT, "treasury", -amount, currency, at),
        ]
    )


def _balanced(entries: list[Entry]) -> list[Entry]:
    require(sum(e.amount for e in entries) == 0, "entries do not balance: %s", entries)
    return [e for e in entries if e.amount != 0]


def entries_of(r: SinkRecord, token_symbol: str) -> list[Entry]:
    """The entries a sink record writes (none for most): a settlement, a
    resolved MISMATCH (settled or failed) and a deposit (in ``token_symbol``)."""
    if isinstance(r, PaymentSettled | PaymentFailed) and r.resolution is not None:
        chain = r.resolution.chain
        accepted = isinstance(r, PaymentSettled)
        return resolution_entries(
            r.event_id,
            r.payment_id,
            r.payer_account or "",
            (r.amount or 0) if accepted else 0,
            chain.payee_address,
            chain.amount,
            chain.fee,
            r.currency if isinstance(r, PaymentSettled) else token_symbol,
            r.settled_at if isinstance(r, PaymentSettled) else r.failed_at,
        )
    if isinstance(r, PaymentSettled | PaymentReorged):  # a reorg undoes a settlement
        at = r.settled_at if isinstance(r, PaymentSettled) else r.occurred_at
        entries = settlement_entries(
            r.event_id,
            r.payment_id,
            r.payer_account,
            r.payee_address,
            r.amount,
            r.currency,
            r.fee,
            at,
        )
        return entries if isinstance(r, PaymentSettled) else _negated(entries)
    if isinstance(r, DepositCredited | DepositReversed):  # a reorg undoes a credit
        entries = deposit_entries(r.event_id, r.account, r.amount, token_symbol, r.occurred_at)
        return entries if isinstance(r, DepositCredited) else _negated(entries)
    return []


def _negated(entries: list[Entry]) -> list[Entry]:
    """The entries that undo ``entries``."""
    return [replace(e, amount=-e.amount) for e in entries]

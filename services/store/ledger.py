"""The ledger rules: which balanced entries an outcome writes.

A settled payment of amount A with fee F writes payer -A, payee +(A - F),
platform fee +F: exactly what the contract moved. F is fixed when the payment
is scored, floor(A * f / 10,000) for a merchant whose rate is f basis points
(``fee_of``; the rounding remainder stays with the payee). A confirmed deposit D writes
account +D and treasury -D. Every set of entries sums to zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.errors import require

FEE_ACCOUNT = "platform:fees"
TREASURY_ACCOUNT = "treasury:chain"
BPS = 10_000


@dataclass(frozen=True)
class Entry:
    event_id: uuid.UUID
    payment_id: uuid.UUID | None
    account: str
    kind: str  # payer | payee | fee | deposit | treasury
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

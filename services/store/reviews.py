"""The PostgreSQL side of reviews: the payments held for review (rows the
ledger sink writes from ``payments.review``) and where a payment stands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class HeldPayment:
    payment_id: uuid.UUID
    payer_account: str
    payee_address: str
    amount: int
    currency: str
    merchant_id: str | None
    requested_at: datetime
    held_at: datetime | None
    expires_at: datetime | None
    fraud_score: int | None
    rules: tuple[str, ...]


HELD = """
SELECT p.payment_id, p.payer_account, p.payee_address, p.amount, p.currency, p.merchant_id,
       p.created_at, p.t_end, p.review_expires_at, f.score, f.rules_triggered
FROM payments p LEFT JOIN fraud_checks f ON f.payment_id = p.payment_id
WHERE p.status = 'REVIEW' AND (%(id)s::uuid IS NULL OR p.payment_id = %(id)s::uuid)
ORDER BY p.created_at, p.payment_id
"""


def held_for_review(
    conn: psycopg.Connection[Any], payment_id: uuid.UUID | None = None
) -> list[HeldPayment]:
    """The payments in REVIEW, oldest first (or only ``payment_id``'s rows)."""
    rows = conn.execute(HELD, {"id": payment_id}).fetchall()
    return [
        HeldPayment(
            payment_id=r[0],
            payer_account=r[1],
            payee_address=r[2],
            amount=int(r[3]),
            currency=r[4],
            merchant_id=r[5],
            requested_at=r[6],
            held_at=r[7],
            expires_at=r[8],
            fraud_score=r[9],
            rules=tuple(r[10] or ()),
        )
        for r in rows
    ]


def status_of(
    conn: psycopg.Connection[Any], payment_id: uuid.UUID, payer_account: str
) -> tuple[str, str | None] | None:
    """A payment's status and failure code in PostgreSQL (None: no row)."""
    row = conn.execute(
        "SELECT status, error_code FROM payments WHERE payment_id = %s AND payer_account = %s",
        (payment_id, payer_account),
    ).fetchone()
    return (str(row[0]), row[1]) if row else None

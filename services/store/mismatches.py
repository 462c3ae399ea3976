"""The PostgreSQL side of MISMATCHes: the reconciler's alerts for payments it
holds because the chain paid them otherwise than requested (rows the ledger
sink writes to ``reconciliation_log`` from ``reconciliation.alerts``), less
those an operator resolved (their ``RESOLVED`` rows)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from schemas.chain import ReconciliationAlert
from schemas.payments import ChainPayout


@dataclass(frozen=True)
class OpenMismatch:
    payment_id: uuid.UUID
    payer_account: str
    detail: str
    chain: ChainPayout
    found_at: datetime


OPEN = """
SELECT DISTINCT ON (l.payment_id, l.detail->>'payer_account') l.run_at, l.detail
FROM reconciliation_log l
WHERE l.kind = 'MISMATCH' AND l.detail->>'held' = 'true'
  AND (%(id)s::uuid IS NULL OR l.payment_id = %(id)s::uuid)
  AND NOT EXISTS (SELECT 1 FROM reconciliation_log r
                  WHERE r.kind = 'RESOLVED' AND r.payment_id = l.payment_id)
ORDER BY l.payment_id, l.detail->>'payer_account', l.run_at
"""


def open_mismatches(
    conn: psycopg.Connection[Any], payment_id: uuid.UUID | None = None
) -> list[OpenMismatch]:
    """The payments held in MISMATCH, oldest first (or only ``payment_id``'s)."""
    found = []
    for run_at, detail in conn.execute(OPEN, {"id": payment_id}).fetchall():
        alert = ReconciliationAlert.model_validate(detail)
        if alert.payment_id is None or alert.payer_account is None or alert.chain is None:
            continue  # written by the reconciler for held payments: cannot happen
        found.append(
            OpenMismatch(alert.payment_id, alert.payer_account, alert.detail, alert.chain, run_at)
        )
    return sorted(found, key=lambda m: (m.found_at, str(m.payment_id)))

"""Every payment's stages on PostgreSQL (``payment_stages``): the sink writes a
row the first time a payment reaches a stage, and the gateway reads them as a
payment's status and timeline.

A settlement a reorg undid is not the payment's status any more: ``settled``,
``finalized`` and ``reorged`` rows carry the payment's reorg count, and a
later settlement (more reorgs) replaces an earlier one's row."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from schemas.codes import FailureCode
from schemas.payments import (
    BatchSubmitted,
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentScored,
    PaymentSettled,
)
from schemas.records import SinkRecord
from schemas.review import ReviewHeld

StageRow = tuple[uuid.UUID, str, datetime, Jsonb]

UPSERT_STAGE = """
INSERT INTO payment_stages (payment_id, stage, at, detail) VALUES (%s, %s, %s, %s)
ON CONFLICT (payment_id, stage) DO UPDATE SET at = excluded.at, detail = excluded.detail
WHERE coalesce((excluded.detail->>'reorgs')::int, 0)
    > coalesce((payment_stages.detail->>'reorgs')::int, 0)
"""


def _row(payment_id: uuid.UUID, stage: str, at: datetime, **detail: Any) -> StageRow:
    kept = {k: v for k, v in detail.items() if v is not None}
    return (payment_id, stage, at, Jsonb(kept))


def _settled(r: PaymentSettled | PaymentFinalized) -> list[StageRow]:
    """A settlement's row, and its finality's when it is final."""
    reached = [("settled", r.settled_at)]
    if isinstance(r, PaymentFinalized):
        reached.append(("finalized", r.finalized_at))
    return [
        _row(
            r.payment_id, stage, at, tx_hash=r.tx_hash, block_number=r.block_number, reorgs=r.reorgs
        )
        for stage, at in reached
    ]


def _failed(r: PaymentFailed) -> list[StageRow]:
    if r.code == FailureCode.PAYMENT_ID_CONFLICT:  # answers another request with this id
        return []
    after_hold = r.code.startswith(("SETTLEMENT_", "REVIEW_"))
    stage = "failed" if after_hold else "rejected"
    return [_row(r.payment_id, stage, r.failed_at, code=r.code.value, reason=r.reason)]


def stage_rows(r: SinkRecord) -> list[StageRow]:
    """The stage rows one sink record proves (none for most non-payment records)."""
    if isinstance(r, PaymentScored):
        request = r.request
        return [
            _row(request.payment_id, "requested", request.requested_at),
            _row(request.payment_id, "scored", r.scored_at, fee=r.fee),
        ]
    if isinstance(r, ReviewHeld):
        request = r.request
        return [
            _row(request.payment_id, "requested", request.requested_at),
            _row(request.payment_id, "review", r.held_at, expires_at=r.expires_at.isoformat()),
        ]
    if isinstance(r, BatchSubmitted):
        if r.outcome != "SUBMITTED":  # a refusal: its payments.failed is the stage
            return []
        return [
            row
            for p in r.payments
            for row in (
                _row(p.payment_id, "requested", p.requested_at),
                _row(p.payment_id, "submitted", r.submitted_at, tx_hash=r.tx_hash),
            )
        ]
    if isinstance(r, PaymentSettled | PaymentFinalized):
        return _settled(r)
    if isinstance(r, PaymentReorged):
        return [_row(r.payment_id, "reorged", r.occurred_at, reorgs=r.reorgs, next=r.next)]
    if isinstance(r, PaymentFailed):
        return _failed(r)
    return []

"""The ``payments``, ``fraud_checks`` and ``metrics_minute`` rows the sink
writes for its records (``postgres.py`` writes them)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from schemas.codes import FailureCode
from schemas.payments import PaymentFailed, PaymentFinalized, PaymentRequested, PaymentSettled
from schemas.records import SinkRecord

# A row only moves forward: a batch may hold a payment's REVIEW row and its
# outcome, and the sink reads its topics in no particular order among them.
RANK = {"REVIEW": 0, "SCORED": 1}  # any other status is an outcome: 2


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def settled_row(r: PaymentSettled | PaymentFinalized) -> tuple[Any, ...]:
    """The row of a settlement (and its time of finality, once final)."""
    latency = r.latency_ms if isinstance(r, PaymentSettled) else _latency_ms(r)
    return (
        r.payment_id,
        r.requested_at,
        r.payer_account,
        r.payee_address,
        r.merchant_id,
        r.amount,
        r.currency,
        "SETTLED",
        r.requested_at,
        r.settled_at,
        latency,
        None,
        r.tx_hash,
        r.batch_id,
        r.sequence,
        r.block_number,
        None,
        r.fee,
        r.reorgs,
        r.finalized_at if isinstance(r, PaymentFinalized) else None,
    )


def _latency_ms(r: PaymentFinalized) -> int:
    return max(0, int((r.settled_at - r.requested_at).total_seconds() * 1000))


def request_row(
    request: PaymentRequested, status: str, at: datetime, expires: datetime | None
) -> tuple[Any, ...]:
    """The row of a payment held for review (``REVIEW``) or approved after one."""
    return (
        request.payment_id,
        request.requested_at,
        request.payer_account,
        request.payee_address,
        request.merchant_id,
        request.amount,
        request.currency,
        status,
        request.requested_at,
        at,
        None,
        None,
        None,
        None,
        None,
        None,
        expires,
        0,
        0,
        None,
    )


def furthest(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per payment (an upsert may touch a row once): the furthest
    status, with the payee, merchant and currency of another row of the same
    payment where the furthest has none (a failure record does not carry them)."""
    best: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for row in rows:
        key = (row[0], row[1])
        kept = best.get(key)
        if kept is None:
            best[key] = row
            continue
        ahead, behind = (row, kept) if _rank(row) >= _rank(kept) else (kept, row)
        same_settlement = _rank(ahead) == _rank(behind)
        best[key] = (
            *ahead[:3],
            ahead[3] or behind[3],
            ahead[4] or behind[4],
            ahead[5],
            ahead[6] or behind[6],
            *ahead[7:19],
            ahead[19] or (behind[19] if same_settlement else None),
        )
    return list(best.values())


def _rank(row: tuple[Any, ...]) -> tuple[int, int]:
    """How far a row is: its status, then (between settlements) its reorgs."""
    return RANK.get(row[7], 2), row[18] if row[7] == "SETTLED" else 0


def has_row(r: PaymentFailed) -> bool:
    """Whether a failure is its payment's outcome, with a ``payments`` row. Malformed
    requests live in the topics only, and so do id conflicts: a conflict answers
    a request that reused the id, and its row would overwrite the payment's."""
    conflict = r.code == FailureCode.PAYMENT_ID_CONFLICT
    return bool(r.payer_account and r.amount) and not conflict


def failed_row(r: PaymentFailed) -> tuple[Any, ...]:
    at = r.requested_at or r.failed_at
    after_hold = r.code.startswith(("SETTLEMENT_", "REVIEW_"))
    status = "FAILED" if after_hold else "REJECTED"
    return (
        r.payment_id,
        at,
        r.payer_account,
        "",
        None,
        r.amount,
        "",
        status,
        at,
        r.failed_at,
        None,
        r.code.value,
        None,
        None,
        None,
        None,
        None,
        0,
        0,
        None,
    )


def fraud_row(payment_id: Any, at: datetime, fraud: Any) -> tuple[Any, ...]:
    return (
        payment_id,
        at,
        fraud.score,
        fraud.decision,
        Jsonb(list(fraud.rules_triggered)),
        fraud.check_duration_us / 1000,
    )


def minute_metrics(records: list[SinkRecord]) -> list[dict[str, Any]]:
    buckets: dict[datetime, dict[str, Any]] = defaultdict(
        lambda: {"total": 0, "ok": 0, "failed": 0, "lat": 0, "amount": 0}
    )
    for r in records:
        if isinstance(r, PaymentSettled) and r.reorgs == 0:  # once per payment
            b = buckets[_minute(r.settled_at)]
            b["ok"] += 1
            b["lat"] += r.latency_ms
            b["amount"] += r.amount
        elif isinstance(r, PaymentFailed):
            b = buckets[_minute(r.failed_at)]
            b["failed"] += 1
        else:
            continue
        b["total"] += 1
    return [
        {
            "bucket": k,
            "total": b["total"],
            "ok": b["ok"],
            "failed": b["failed"],
            "avg": b["lat"] / b["ok"] if b["ok"] else None,
            "amount": b["amount"],
        }
        for k, b in buckets.items()
    ]

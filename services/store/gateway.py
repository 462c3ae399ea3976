"""The gateway's rows on PostgreSQL: the payments it created, its idempotency
keys, and the payments' stages the sink records (its read model).

An idempotency key is claimed by inserting its row (one insert wins); the
winner answers and stores its answer on the row, the others wait for that
answer and replay it. A claim whose answer never came (its gateway died) is
taken over after ``STALE_CLAIM_S``: the payment id is fixed on the row, so the
next attempt publishes the same payment again, which the engine recognises."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.errors import OperationalError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from schemas.api import Stage
from services.errors import StoreUnavailable
from services.store.keys import live_mandate

STALE_CLAIM_S = 30


@dataclass(frozen=True)
class Claim:
    """An idempotency key's row: ``owned`` when this request must answer it,
    ``fresh`` when this request created the row (no earlier attempt)."""

    owned: bool
    request_hash: str
    payment_id: uuid.UUID
    status_code: int | None
    response: str | None  # the first answer's JSON body
    fresh: bool = False


@dataclass(frozen=True)
class PaymentRow:
    payment_id: uuid.UUID
    merchant_id: str
    payer_account: str
    payee_address: str
    amount: int
    currency: str
    metadata: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class Answer:
    """The first answer given to a request with an idempotency key."""

    merchant_id: str
    key: str
    status_code: int
    response: str  # its JSON body


ANSWERED = """
UPDATE idempotency_keys k SET status_code = a.status_code, response = a.response
FROM jsonb_to_recordset(%s) AS a(merchant_id text, key text, status_code int, response text)
WHERE k.merchant_id = a.merchant_id AND k.key = a.key
"""
CLAIM = """
INSERT INTO idempotency_keys (merchant_id, key, request_hash, payment_id)
VALUES (%s, %s, %s, %s) ON CONFLICT (merchant_id, key) DO NOTHING RETURNING payment_id
"""
TAKE_OVER = """
UPDATE idempotency_keys SET claimed_at = now()
WHERE merchant_id = %s AND key = %s AND status_code IS NULL
  AND claimed_at < now() - make_interval(secs => %s) RETURNING payment_id
"""
PAYMENT_COLUMNS = (
    "payment_id, merchant_id, payer_account, payee_address, amount, currency, metadata, created_at"
)
# New requests' keys claimed and their payments recorded at once, those whose
# payer's live mandate covers the amount: per payment claimed, whether recorded.
CLAIM_AND_RECORD = f"""
WITH new AS (
    SELECT * FROM jsonb_to_recordset(%s) AS n(
        key text, request_hash text, payment_id uuid, merchant_id text, payer_account text,
        payee_address text, amount numeric, currency text, metadata jsonb, created_at timestamptz)
), allowed AS (
    SELECT new.* FROM new
    CROSS JOIN LATERAL ({live_mandate("new.payer_account", "new.merchant_id")}) mandate
    WHERE mandate.max_amount IS NULL OR mandate.max_amount >= new.amount
), claimed AS (
    INSERT INTO idempotency_keys (merchant_id, key, request_hash, payment_id)
    SELECT merchant_id, key, request_hash, payment_id FROM allowed
    ON CONFLICT (merchant_id, key) DO NOTHING RETURNING payment_id
), recorded AS (
    INSERT INTO gateway_payments ({PAYMENT_COLUMNS})
    SELECT {PAYMENT_COLUMNS} FROM allowed JOIN claimed USING (payment_id)
    ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id
)
SELECT claimed.payment_id, recorded.payment_id IS NOT NULL
FROM claimed LEFT JOIN recorded USING (payment_id)
"""  # noqa: S608 - constant columns and clauses


@dataclass(frozen=True)
class KeyedPayment:
    """A new payment under an idempotency key (its id is derived from the key)."""

    key: str
    request_hash: str
    payment: PaymentRow

    def fields(self) -> dict[str, Any]:
        p = self.payment
        return {
            "key": self.key,
            "request_hash": self.request_hash,
            "payment_id": str(p.payment_id),
            "merchant_id": p.merchant_id,
            "payer_account": p.payer_account,
            "payee_address": p.payee_address,
            "amount": p.amount,
            "currency": p.currency,
            "metadata": p.metadata,
            "created_at": p.created_at.isoformat(),
        }


def _payment(row: tuple[Any, ...]) -> PaymentRow:
    return PaymentRow(
        payment_id=row[0],
        merchant_id=row[1],
        payer_account=row[2],
        payee_address=row[3],
        amount=int(row[4]),
        currency=row[5],
        metadata=row[6],
        created_at=row[7],
    )


def _jsonb(metadata: dict[str, Any] | None) -> Jsonb | None:
    return Jsonb(metadata) if metadata is not None else None


class GatewayStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _fetch(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchall() if cur.description else []
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"gateway store: {exc}") from exc

    async def claim(
        self, merchant_id: str, key: str, request_hash: str, payment_id: uuid.UUID
    ) -> Claim:
        """Claim ``key`` for this request, or find who holds it. An unanswered
        claim of the same request that is stale (or given up) is taken over; one
        released between our insert and our read is claimed again."""
        while True:
            if await self._fetch(CLAIM, (merchant_id, key, request_hash, payment_id)):
                return Claim(True, request_hash, payment_id, None, None, fresh=True)
            rows = await self._fetch(
                "SELECT request_hash, payment_id, status_code, response FROM idempotency_keys"
                " WHERE merchant_id = %s AND key = %s",
                (merchant_id, key),
            )
            if not rows:
                continue  # released meanwhile (its request was refused): try again
            (found,) = rows
            owned = False
            if found[0] == request_hash and found[2] is None:
                owned = bool(await self._fetch(TAKE_OVER, (merchant_id, key, STALE_CLAIM_S)))
            return Claim(owned, found[0], found[1], found[2], found[3])

    async def claim_and_record(self, new: Sequence[KeyedPayment]) -> list[tuple[bool, bool]]:
        """New requests in one statement: each one's key claimed and its payment
        recorded, if the payer's live mandate covers the amount. Per request
        (claimed, recorded); (False, False) when its key was already claimed or
        its mandate does not cover it (its caller then takes ``claim``'s path and
        finds out which). The keys must differ."""
        rows = await self._fetch(CLAIM_AND_RECORD, (Jsonb([n.fields() for n in new]),))
        done = {payment_id: bool(recorded) for payment_id, recorded in rows}
        return [(n.payment.payment_id in done, done.get(n.payment.payment_id, False)) for n in new]

    async def answered(self, answers: Sequence[Answer]) -> None:
        """Store the first answers of these keys (one statement for them all)."""
        await self._fetch(ANSWERED, (Jsonb([dataclasses.asdict(a) for a in answers]),))

    async def release(self, merchant_id: str, key: str) -> None:
        """Forget a fresh claim whose request was refused before any effect: the
        key is free again, for a corrected request too."""
        await self._fetch(
            "DELETE FROM idempotency_keys WHERE merchant_id = %s AND key = %s"
            " AND status_code IS NULL",
            (merchant_id, key),
        )

    async def give_up(self, merchant_id: str, key: str) -> None:
        """Leave an unanswered claim to the next attempt at once (its request was
        not confirmed by Kafka: a retry of the same request publishes it again)."""
        await self._fetch(
            "UPDATE idempotency_keys SET claimed_at = '-infinity'"
            " WHERE merchant_id = %s AND key = %s AND status_code IS NULL",
            (merchant_id, key),
        )

    async def record(self, p: PaymentRow) -> bool:
        """Record the payment, unless an earlier attempt did (its first row is
        kept); whether this call recorded it."""
        inserted = await self._fetch(
            f"INSERT INTO gateway_payments ({PAYMENT_COLUMNS})"  # noqa: S608 - constant columns
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (payment_id) DO NOTHING"
            " RETURNING payment_id",
            (
                p.payment_id,
                p.merchant_id,
                p.payer_account,
                p.payee_address,
                p.amount,
                p.currency,
                _jsonb(p.metadata),
                p.created_at,
            ),
        )
        return bool(inserted)

    async def payment(self, merchant_id: str, payment_id: uuid.UUID) -> PaymentRow | None:
        """The merchant's payment (None: none, or another merchant's)."""
        rows = await self._fetch(
            f"SELECT {PAYMENT_COLUMNS} FROM gateway_payments"  # noqa: S608 - constant columns
            " WHERE payment_id = %s AND merchant_id = %s",
            (payment_id, merchant_id),
        )
        return _payment(rows[0]) if rows else None

    async def payments(
        self,
        merchant_id: str,
        limit: int,
        after: uuid.UUID | None,
        statuses: Sequence[str] | None,
    ) -> list[PaymentRow]:
        """The merchant's payments, newest first, after the cursor payment."""
        rows = await self._fetch(
            f"SELECT {PAYMENT_COLUMNS} FROM gateway_payments g"  # noqa: S608 - constant columns
            " WHERE merchant_id = %(m)s AND (%(after)s::uuid IS NULL OR (created_at, payment_id) <"
            "   (SELECT created_at, payment_id FROM gateway_payments"
            "    WHERE payment_id = %(after)s AND merchant_id = %(m)s))"
            " AND (%(statuses)s::text[] IS NULL"
            "   OR paystream_payment_status(payment_id) = ANY(%(statuses)s))"
            " ORDER BY created_at DESC, payment_id DESC LIMIT %(limit)s",
            {
                "m": merchant_id,
                "after": after,
                "statuses": statuses and list(statuses),
                "limit": limit,
            },
        )
        return [_payment(r) for r in rows]

    async def progress(
        self, payment_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, dict[str, Stage]]]:
        """Each payment's status and the stages it reached so far."""
        statuses = await self._fetch(
            "SELECT p, paystream_payment_status(p) FROM unnest(%s::uuid[]) AS p", (payment_ids,)
        )
        rows = await self._fetch(
            "SELECT payment_id, stage, at, detail FROM payment_stages WHERE payment_id = ANY(%s)",
            (payment_ids,),
        )
        stages: dict[uuid.UUID, dict[str, Stage]] = {p: {} for p in payment_ids}
        for payment_id, stage, at, detail in rows:
            stages[payment_id][stage] = Stage.model_validate({**detail, "at": at})
        return {p: (status, stages[p]) for p, status in statuses}

    async def ledger_balance(self, account: str, as_of: datetime) -> int:
        """The sum of the account's ledger entries booked by ``as_of``."""
        rows = await self._fetch(
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries"
            " WHERE account = %s AND created_at <= %s",
            (account, as_of),
        )
        return int(rows[0][0])

    async def pending_reviews(self) -> tuple[int, datetime | None, datetime | None]:
        """The payments held for review: how many, the oldest request's time and
        the soonest expiry (every merchant's: for the ops page only)."""
        rows = await self._fetch(
            "SELECT count(*), min(created_at), min(review_expires_at) FROM payments"
            " WHERE status = 'REVIEW'",
            (),
        )
        count, oldest, soonest = rows[0]
        return int(count), oldest, soonest

    async def stage_latency(self, window_s: int = 900) -> dict[str, float]:
        """The median time (s) from each stage to the next, over payments that
        reached the next stage in the last ``window_s``."""
        rows = await self._fetch(STAGE_LATENCY, (window_s,))
        return {stage: float(seconds) for stage, seconds in rows if seconds is not None}


STAGE_LATENCY = """
WITH pairs(stage, next) AS (VALUES ('requested', 'scored'), ('review', 'scored'),
    ('scored', 'submitted'), ('submitted', 'settled'), ('settled', 'finalized'))
SELECT p.stage, percentile_cont(0.5) WITHIN GROUP (
    ORDER BY extract(epoch FROM n.at - s.at))
FROM pairs p
JOIN payment_stages n ON n.stage = p.next AND n.at > now() - make_interval(secs => %s)
JOIN payment_stages s ON s.payment_id = n.payment_id AND s.stage = p.stage
GROUP BY p.stage
"""

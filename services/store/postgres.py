"""The ledger store on PostgreSQL (psycopg 3 async pool).

``apply`` writes a batch in one transaction: the ``processed_events`` rows
(consumer, event id) first, then only the effects of the events that were new.
A replayed batch therefore changes nothing. A batch PostgreSQL refuses for what
a record holds (``DataError``, ``IntegrityError``) is ``RecordsRefused``; one
it cannot write for now is ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import DataError, IntegrityError, OperationalError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from schemas.chain import DepositCredited, DepositReversed, ReconciliationAlert
from schemas.payments import (
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentScored,
    PaymentSettled,
)
from schemas.records import SinkRecord
from schemas.review import ReviewHeld
from services.errors import RecordsRefused, StoreUnavailable
from services.store import deposits as deposit_rows
from services.store.ledger import Entry, entries_of
from services.store.rows import (
    failed_row,
    fraud_row,
    furthest,
    has_row,
    minute_metrics,
    request_row,
    settled_row,
)
from services.store.stages import UPSERT_STAGE, StageRow, stage_rows

PAYMENT_COLUMNS = (
    "payment_id, created_at, payer_account, payee_address, merchant_id, amount, currency, "
    "status, t_start, t_end, latency_ms, error_code, tx_hash, batch_id, sequence, block_number, "
    "review_expires_at, fee, reorgs, finalized_at"
)
# A row only moves forward (``rows.RANK`` in SQL).
_RANK_SQL = "CASE {} WHEN 'REVIEW' THEN 0 WHEN 'SCORED' THEN 1 ELSE 2 END"
# A settlement a reorg undid (fewer reorgs than the row has seen) never comes back.
_AHEAD = (
    f"{_RANK_SQL.format('excluded.status')} >= {_RANK_SQL.format('payments.status')} "
    "AND (excluded.status <> 'SETTLED' OR excluded.reorgs >= payments.reorgs)"
)
_PROGRESS = [
    "status",
    "t_end",
    "latency_ms",
    "error_code",
    "tx_hash",
    "batch_id",
    "sequence",
    "block_number",
    "review_expires_at",
    "fee",
]
# The row of a payment whose settlement a reorg undid: sent again (until its
# next settled or failed record), unless the row has seen this reorg or a later one.
REORGED = """
UPDATE payments SET status = 'SUBMITTED', reorgs = %(reorgs)s, t_end = NULL,
    latency_ms = NULL, block_number = NULL, finalized_at = NULL
WHERE payment_id = %(payment_id)s AND payer_account = %(payer)s AND reorgs < %(reorgs)s
"""
# Rows are COPied into a session-local staging table, then upserted in one statement.
STAGE_PAYMENTS = (
    "CREATE TEMP TABLE IF NOT EXISTS payments_stage "
    "(LIKE payments INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_SET = ", ".join(
    [f"{c} = CASE WHEN {_AHEAD} THEN excluded.{c} ELSE payments.{c} END" for c in _PROGRESS]
    # A failure record carries no payee, currency or merchant: keep the known ones.
    + [
        "reorgs = greatest(payments.reorgs, excluded.reorgs)",
        # Final once a payments.finalized of the row's settlement was read.
        f"finalized_at = CASE WHEN {_AHEAD} "
        "THEN coalesce(excluded.finalized_at, payments.finalized_at) "
        "ELSE payments.finalized_at END",
        "payee_address = coalesce(nullif(payments.payee_address, ''), excluded.payee_address)",
        "currency = coalesce(nullif(payments.currency, ''), excluded.currency)",
        "merchant_id = coalesce(payments.merchant_id, excluded.merchant_id)",
    ]
)
UPSERT_PAYMENT = f"""
INSERT INTO payments ({PAYMENT_COLUMNS}) SELECT {PAYMENT_COLUMNS} FROM payments_stage
ON CONFLICT (payment_id, created_at) DO UPDATE SET {_SET}
"""  # noqa: S608 - constant column and status lists, no input

INSERT_FRAUD = """
INSERT INTO fraud_checks (payment_id, checked_at, score, decision, rules_triggered,
    check_duration_ms)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (payment_id) DO NOTHING
"""

INSERT_LOG = """
INSERT INTO reconciliation_log (run_at, kind, payment_id, detail) VALUES (%s, %s, %s, %s)
"""

UPSERT_METRIC = """
INSERT INTO transaction_metrics AS m (bucket_start, n_total, n_success, n_failed, tps,
    avg_latency_ms, success_rate, total_amount)
VALUES (%(bucket)s, %(total)s, %(ok)s, %(failed)s, %(total)s / 60.0, %(avg)s,
    %(ok)s::float / %(total)s, %(amount)s)
ON CONFLICT (bucket_start) DO UPDATE SET
    n_total = m.n_total + excluded.n_total,
    n_success = m.n_success + excluded.n_success,
    n_failed = m.n_failed + excluded.n_failed,
    tps = (m.n_total + excluded.n_total) / 60.0,
    avg_latency_ms = CASE WHEN m.n_success + excluded.n_success = 0 THEN NULL ELSE
        (coalesce(m.avg_latency_ms, 0) * m.n_success
         + coalesce(excluded.avg_latency_ms, 0) * excluded.n_success)
        / (m.n_success + excluded.n_success) END,
    success_rate = (m.n_success + excluded.n_success)::float / (m.n_total + excluded.n_total),
    total_amount = m.total_amount + excluded.total_amount
"""


class PostgresLedgerStore:
    def __init__(self, pool: AsyncConnectionPool, token_symbol: str) -> None:
        self.pool = pool
        self.token_symbol = token_symbol  # the treasury's token: the currency of deposits

    async def apply(self, consumer: str, records: Sequence[SinkRecord]) -> int:
        unique = list({r.event_id: r for r in records}.values())
        try:
            async with self.pool.connection() as conn, conn.transaction():
                return await self._apply(conn, consumer, unique)
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"ledger batch not written: {exc}") from exc
        except (DataError, IntegrityError) as exc:  # the records, not the database
            raise RecordsRefused(f"{type(exc).__name__}: {str(exc).strip()[:500]}") from exc

    async def _apply(
        self, conn: AsyncConnection[Any], consumer: str, records: list[SinkRecord]
    ) -> int:
        cur = await conn.execute(
            "INSERT INTO processed_events (consumer, event_id) SELECT %s, unnest(%s::uuid[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            (consumer, [r.event_id for r in records]),
        )
        new = {row[0] for row in await cur.fetchall()}
        todo = [r for r in records if r.event_id in new]
        entries: list[Entry] = []
        payments: list[tuple[Any, ...]] = []
        frauds: list[tuple[Any, ...]] = []
        logs: list[tuple[Any, ...]] = []
        reorged: list[dict[str, Any]] = []
        deposits: list[dict[str, Any]] = []
        stages: list[StageRow] = []
        for r in todo:
            entries += entries_of(r, self.token_symbol)
            stages += stage_rows(r)
            if isinstance(r, PaymentReorged):
                reorged.append(
                    {"payment_id": r.payment_id, "payer": r.payer_account, "reorgs": r.reorgs}
                )
            elif isinstance(r, DepositCredited | DepositReversed):
                deposits.append(deposit_rows.deposit_row(r))
            elif isinstance(r, PaymentSettled | PaymentFinalized):
                payments.append(settled_row(r))
            elif isinstance(r, PaymentFailed):
                if has_row(r):
                    payments.append(failed_row(r))
                if r.fraud is not None:
                    frauds.append(fraud_row(r.payment_id, r.failed_at, r.fraud))
            elif isinstance(r, ReconciliationAlert):
                logs.append((r.occurred_at, r.kind, r.payment_id, Jsonb(r.model_dump(mode="json"))))
            if isinstance(r, PaymentSettled | PaymentFailed) and r.resolution is not None:
                detail = Jsonb(r.resolution.model_dump(mode="json"))
                logs.append((r.occurred_at, "RESOLVED", r.payment_id, detail))
            elif isinstance(r, PaymentScored):
                if r.approval is not None:  # it had a REVIEW row
                    payments.append(request_row(r.request, "SCORED", r.scored_at, None))
                frauds.append(fraud_row(r.request.payment_id, r.scored_at, r.fraud))
            elif isinstance(r, ReviewHeld):
                payments.append(request_row(r.request, "REVIEW", r.held_at, r.expires_at))
                frauds.append(fraud_row(r.request.payment_id, r.held_at, r.fraud))
        async with conn.cursor() as c:
            if payments:
                await c.execute(STAGE_PAYMENTS)
                async with c.copy(f"COPY payments_stage ({PAYMENT_COLUMNS}) FROM STDIN") as copy:
                    for row in furthest(payments):
                        await copy.write_row(row)
                await c.execute(UPSERT_PAYMENT)
            if reorged:
                await c.executemany(REORGED, reorged)
            if deposits:
                await c.executemany(deposit_rows.UPSERT, deposit_rows.later(deposits))
            if frauds:
                await c.executemany(INSERT_FRAUD, frauds)
            if logs:
                await c.executemany(INSERT_LOG, logs)
            if stages:
                await c.executemany(UPSERT_STAGE, stages)
            if entries:
                async with c.copy(
                    "COPY ledger_entries (event_id, payment_id, account, kind, "
                    "amount, currency, created_at) FROM STDIN"
                ) as copy:
                    for e in entries:
                        await copy.write_row(
                            (
                                e.event_id,
                                e.payment_id,
                                e.account,
                                e.kind,
                                e.amount,
                                e.currency,
                                e.at,
                            )
                        )
            for metric in minute_metrics(todo):
                await c.execute(UPSERT_METRIC, metric)
        return len(todo)

    async def balance(self, account: str, as_of: datetime | None = None) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = %s"
                " AND (%s::timestamptz IS NULL OR created_at <= %s)",
                (account, as_of, as_of),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def deposit_credits(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        try:
            async with self.pool.connection() as conn:
                return await deposit_rows.credits_of(conn, deposit_ids)
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"deposits not read: {exc}") from exc

    async def ledger_total(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT coalesce(sum(amount), 0) FROM ledger_entries")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

"""``paystream bench store``: batched ledger writes per second on a scratch database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from eth_account import Account
from psycopg import sql

from schemas.payments import PaymentSettled
from services.bootstrap import ledger_store, pg_pool
from services.settings import Settings
from services.store.schema import upgrade


def _records(count: int) -> list[PaymentSettled]:
    payee = Account.create().address
    now = datetime.now(UTC)
    return [
        PaymentSettled(
            payment_id=uuid.uuid4(),
            payer_account=f"bench-{i % 500}",
            payee_address=payee,
            amount=1_000 + i,
            currency="PTUSD",
            tx_hash="0xaa",
            block_number=1,
            block_hash="0xbb",
            batch_id=i // 200,
            sequence=i,
            requested_at=now - timedelta(seconds=1),
            settled_at=now,
            latency_ms=1000,
        )
        for i in range(count)
    ]


async def _write(
    settings: Settings, records: list[PaymentSettled], batch: int, progress: Callable[[int], None]
) -> float:
    async with pg_pool(settings) as pool:
        store = ledger_store(pool, settings)
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            await store.apply("bench", records[i : i + batch])
            progress(min(batch, len(records) - i))
        return time.perf_counter() - started


@contextmanager
def scratch_database(settings: Settings) -> Iterator[Settings]:
    """A new, migrated database on the stack's PostgreSQL (dropped afterwards):
    benchmarks never write into the system of record."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(
        settings.pg_conninfo, password=settings.pg_password.get_secret_value(), autocommit=True
    )
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    scratch = settings.model_copy(update={"pg_database": name})
    try:
        upgrade(scratch)
        yield scratch
    finally:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def run_store_bench(
    settings: Settings, payments: int, batch: int, progress: Callable[[int], None] = lambda _: None
) -> dict[str, float]:
    with scratch_database(settings) as scratch:
        records = _records(payments)
        seconds = asyncio.run(_write(scratch, records, batch, progress))
    # Per settled payment: 1 processed_events row, 1 payments row, 2 ledger entries.
    rows = payments * 4
    return {
        "payments": payments,
        "batch": batch,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "payments_per_s": payments / seconds,
    }

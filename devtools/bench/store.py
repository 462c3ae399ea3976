"""``paystream bench store``: batched ledger writes per second on a scratch database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from eth_account import Account

from devtools.harness.database import scratch_database
from schemas.payments import PaymentSettled
from services.bootstrap import ledger_store, pg_pool
from services.settings import Settings


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


def run_store_bench(
    settings: Settings, payments: int, batch: int, progress: Callable[[int], None] = lambda _: None
) -> dict[str, float]:
    with scratch_database(settings, "bench") as scratch:
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

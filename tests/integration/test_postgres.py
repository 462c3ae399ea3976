"""PostgreSQL through the psycopg 3 pool the composition root builds."""

from __future__ import annotations

import asyncio

import pytest

from services.bootstrap import pg_pool
from services.settings import Settings

pytestmark = pytest.mark.integration


async def test_pool_round_trip_with_bound_parameters(stack_healthy: Settings) -> None:
    async with pg_pool(stack_healthy) as pool, pool.connection() as conn:
        await conn.execute(
            "CREATE TEMP TABLE roundtrip (payment_id text PRIMARY KEY, amount bigint NOT NULL)"
        )
        # A hostile-looking value is bound, never formatted into the SQL.
        rows = [("p-1", 1_000_000), ("p-2'; DROP TABLE roundtrip; --", 2**62)]
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO roundtrip VALUES (%s, %s)", rows)
            await cur.execute("SELECT payment_id, amount FROM roundtrip ORDER BY payment_id")
            assert await cur.fetchall() == rows


async def test_pool_serves_concurrent_connections(stack_healthy: Settings) -> None:
    async with pg_pool(stack_healthy) as pool:

        async def backend_pid() -> int:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT pg_backend_pid(), pg_sleep(0.2)")
                row = await cur.fetchone()
                assert row is not None
                return int(row[0])

        pids = await asyncio.gather(*(backend_pid() for _ in range(4)))
    assert len(set(pids)) == 4

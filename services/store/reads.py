"""Read models served from PostgreSQL through a ``Cache`` (``services/cache/aside.py``)."""

from __future__ import annotations

from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from services.ports import Cache


class User(BaseModel):
    account_id: str
    email: str | None


class MinuteMetrics(BaseModel):
    bucket_start: datetime
    n_total: int
    n_success: int
    n_failed: int
    success_rate: float | None


class Reads:
    def __init__(self, pool: AsyncConnectionPool, cache: Cache) -> None:
        self.pool = pool
        self.cache = cache
        self.loads = 0  # reads that reached PostgreSQL

    async def _user(self, account_id: str) -> User | None:
        self.loads += 1
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account_id, email FROM users WHERE account_id = %s", (account_id,)
            )
            row = await cur.fetchone()
        return User(account_id=row[0], email=row[1]) if row else None

    async def user(self, account_id: str) -> User | None:
        return await self.cache.get("users", account_id, User, lambda: self._user(account_id))

    async def _metrics(self, bucket: datetime) -> MinuteMetrics | None:
        self.loads += 1
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT bucket_start, n_total, n_success, n_failed, success_rate "
                "FROM transaction_metrics WHERE bucket_start = %s",
                (bucket,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return MinuteMetrics(
            bucket_start=row[0],
            n_total=row[1],
            n_success=row[2],
            n_failed=row[3],
            success_rate=row[4],
        )

    async def minute_metrics(self, bucket: datetime) -> MinuteMetrics | None:
        return await self.cache.get(
            "metrics", bucket.isoformat(), MinuteMetrics, lambda: self._metrics(bucket)
        )

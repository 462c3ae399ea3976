"""Locks several processes share, held in PostgreSQL.

``advisory_lock`` is a session advisory lock on one pooled connection, held
while the block runs: PostgreSQL also releases it when the holder dies (its
session ends), so a SIGKILLed worker never leaves it behind. Waiting for it is
bounded by ``lock_timeout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress

from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.errors import StoreUnavailable


def advisory_lock(
    pool: AsyncConnectionPool, namespace: str, timeout_s: float
) -> Callable[[str], AbstractAsyncContextManager[None]]:
    """A lock per name (e.g. per sending account), shared by every process on
    this database; ``StoreUnavailable`` if it is not had within ``timeout_s``."""

    @asynccontextmanager
    async def lock(name: str) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            try:
                conn = await stack.enter_async_context(pool.connection())
                await conn.set_autocommit(True)
                await conn.execute(
                    "SELECT set_config('lock_timeout', %s, false)", (f"{int(timeout_s * 1000)}ms",)
                )
                key = (f"{namespace}:{name}",)
                await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", key)
            except (OperationalError, PoolTimeout) as exc:
                raise StoreUnavailable(f"lock {namespace}:{name} not taken: {exc}") from exc
            try:
                yield
            finally:
                # Released here, or by PostgreSQL when the session ends: an error
                # now must not hide what the holder did (e.g. a sent transaction).
                with suppress(OperationalError):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", key)
                    await conn.execute("RESET lock_timeout")
                    await conn.set_autocommit(False)  # as the pool's other users expect

    return lock

"""Settlement halts on PostgreSQL: a reorg deeper than ``finality_depth`` stops
every worker from sending until an operator has checked the chain and resumes
(``paystream chain resume-settlement``). At most one halt is open at a time;
each keeps who resumed it and when."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.errors import OperationalError, UndefinedTable
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.errors import SchemaMissing, StoreUnavailable

HALT = """
INSERT INTO settlement_halts (reason) VALUES (%s)
ON CONFLICT ((true)) WHERE resumed_at IS NULL DO NOTHING
"""
OPEN_HALT = "SELECT reason FROM settlement_halts WHERE resumed_at IS NULL"
RESUME = """
UPDATE settlement_halts SET resumed_at = now(), resumed_by = %s
WHERE resumed_at IS NULL RETURNING reason
"""


async def halt(pool: AsyncConnectionPool, reason: str) -> None:
    with _translated("settlement not halted"):
        async with pool.connection() as conn:
            await conn.execute(HALT, (reason[:1000],))


async def halted(pool: AsyncConnectionPool) -> str | None:
    with _translated("settlement halt not read"):
        async with pool.connection() as conn:
            cur = await conn.execute(OPEN_HALT)
            row = await cur.fetchone()
    return str(row[0]) if row else None


def resume(conn: psycopg.Connection[Any], by: str) -> str | None:
    """End the open halt (its reason), or None when none was open."""
    row = conn.execute(RESUME, (by,)).fetchone()
    conn.commit()
    return str(row[0]) if row else None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except UndefinedTable as exc:
        raise SchemaMissing(
            f"{what}: the database has no settlement_halts table: run `paystream db migrate`"
        ) from exc
    except (OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"{what}: {exc}") from exc

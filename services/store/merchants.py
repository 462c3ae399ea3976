"""The merchants on PostgreSQL: registered by ``paystream merchants create``
(with an audit-log row), read in full by each worker's merchant directory."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg.errors import CheckViolation, OperationalError, UniqueViolation
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from schemas.merchants import Merchant
from services.errors import ConfigError, StoreUnavailable
from services.store.audit import append

SELECT_MERCHANTS = (
    "SELECT merchant_id, name, payout_address, fee_percentage_bps FROM merchants"
    " WHERE payout_address IS NOT NULL"
)


def new_merchant_id() -> str:
    return "mer_" + secrets.token_hex(8)


def _merchant(row: tuple[Any, ...]) -> Merchant:
    return Merchant(merchant_id=row[0], name=row[1], payout_address=row[2], fee_bps=int(row[3]))


def create_merchant(conn: psycopg.Connection[Any], merchant: Merchant, actor: str) -> Merchant:
    """Register ``merchant`` and record it in the audit log, in one transaction.
    A payout address or id already registered is a ConfigError saying which."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO merchants (merchant_id, name, payout_address, fee_percentage_bps)"
                " VALUES (%s, %s, %s, %s)",
                (merchant.merchant_id, merchant.name, merchant.payout_address, merchant.fee_bps),
            )
            append(conn, actor, "merchant.created", merchant.merchant_id, merchant.model_dump())
    except UniqueViolation as exc:
        raise ConfigError(
            f"a merchant with id {merchant.merchant_id} or payout address "
            f"{merchant.payout_address} is already registered (`paystream merchants list`)"
        ) from exc
    except CheckViolation as exc:
        raise ConfigError(f"merchant refused by the database: {exc}") from exc
    return merchant


def list_merchants(conn: psycopg.Connection[Any]) -> list[Merchant]:
    rows = conn.execute(SELECT_MERCHANTS + " ORDER BY created_at, merchant_id").fetchall()
    return [_merchant(r) for r in rows]


class PostgresMerchants:
    """The ``Merchants`` port: every merchant that can be paid (has a payout address)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def load(self) -> dict[str, Merchant]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(SELECT_MERCHANTS)
                rows = await cur.fetchall()
        except (OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"merchants not read: {exc}") from exc
        return {m.merchant_id: m for m in map(_merchant, rows)}

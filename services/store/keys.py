"""Merchants' API keys and the mandates payers grant them, on PostgreSQL.

A key is ``psk_<key id>_<secret>``: only its SHA-256 is stored, with the key id
(16 hex digits, not secret) to find it. The key is shown once, when created.
Creating, rotating and revoking keys and granting and revoking mandates are
written to the audit log in the same transaction (without the key)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.errors import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict

from schemas.api import SCOPES, Scope
from schemas.merchants import Merchant
from services.errors import ConfigError, StoreUnavailable
from services.store.audit import append

_KEY = re.compile(r"^psk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


class KeyHolder(BaseModel):
    """What a key's look-up finds (cached for a minute): its merchant, its hash
    and scopes, and whether it was revoked."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    key_hash: str  # hex
    scopes: tuple[Scope, ...]
    revoked: bool
    merchant: Merchant
    rate_per_s: float | None = None  # None: the gateway's default
    burst: int | None = None


def key_id_of(api_key: str) -> str | None:
    """The key id of a well-formed key (None: not a paystream key)."""
    found = _KEY.match(api_key)
    return found.group(1) if found else None


def digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def matches(holder: KeyHolder, api_key: str) -> bool:
    return hmac.compare_digest(bytes.fromhex(holder.key_hash), digest(api_key))


def new_key() -> tuple[str, str]:
    """A new (key id, key)."""
    key_id = secrets.token_hex(8)
    return key_id, f"psk_{key_id}_{secrets.token_urlsafe(32)}"


def issue_key(
    conn: psycopg.Connection[Any], merchant_id: str, scopes: Sequence[Scope], actor: str
) -> str:
    """A new key for the merchant (within the caller's transaction); returns it."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}")
    key_id, api_key = new_key()
    conn.execute(
        "INSERT INTO api_keys (key_id, merchant_id, key_hash, scopes) VALUES (%s, %s, %s, %s)",
        (key_id, merchant_id, digest(api_key), list(scopes)),
    )
    append(conn, actor, "api_key.created", merchant_id, {"key_id": key_id, "scopes": list(scopes)})
    return api_key


def revoke_keys(
    conn: psycopg.Connection[Any], merchant_id: str, actor: str, key_id: str | None = None
) -> list[str]:
    """Revoke the merchant's live keys (or only ``key_id``); returns their ids."""
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE merchant_id = %s AND revoked_at IS NULL"
        " AND (%s::text IS NULL OR key_id = %s) RETURNING key_id",
        (merchant_id, key_id, key_id),
    )
    revoked = [row[0] for row in cur.fetchall()]
    for kid in revoked:
        append(conn, actor, "api_key.revoked", merchant_id, {"key_id": kid})
    return revoked


def _require_merchant(conn: psycopg.Connection[Any], merchant_id: str) -> None:
    if not conn.execute(
        "SELECT 1 FROM merchants WHERE merchant_id = %s", (merchant_id,)
    ).fetchone():
        raise ConfigError(f"no merchant {merchant_id} (`paystream merchants list`)")


def limit_keys(
    conn: psycopg.Connection[Any],
    merchant_id: str,
    rate_per_s: float | None,
    burst: int | None,
    actor: str,
) -> list[str]:
    """Set the rate limit of the merchant's live keys (None: the gateway's
    default); returns their ids."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE api_keys SET rate_per_s = %s, burst = %s"
            " WHERE merchant_id = %s AND revoked_at IS NULL RETURNING key_id",
            (rate_per_s, burst, merchant_id),
        )
        limited = [row[0] for row in cur.fetchall()]
        detail = {"keys": limited, "rate_per_s": rate_per_s, "burst": burst}
        append(conn, actor, "api_key.limited", merchant_id, detail)
    return limited


def rotate_key(
    conn: psycopg.Connection[Any], merchant_id: str, scopes: Sequence[Scope], actor: str
) -> tuple[str, list[str]]:
    """A new key for the merchant, its live keys revoked, in one transaction."""
    with conn.transaction():
        _require_merchant(conn, merchant_id)
        revoked = revoke_keys(conn, merchant_id, actor)
        return issue_key(conn, merchant_id, scopes, actor), revoked


SELECT_HOLDER = """
SELECT k.key_id, k.key_hash, k.scopes, k.revoked_at IS NOT NULL,
       m.merchant_id, m.name, m.payout_address, m.fee_percentage_bps, k.rate_per_s, k.burst
FROM api_keys k JOIN merchants m USING (merchant_id)
WHERE k.key_id = %s AND m.payout_address IS NOT NULL
"""


async def _one(
    pool: AsyncConnectionPool, sql: str, params: tuple[Any, ...] | dict[str, Any]
) -> Any:
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()
    except (OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"keys and mandates: {exc}") from exc


async def load_holder(pool: AsyncConnectionPool, key_id: str) -> KeyHolder | None:
    row = await _one(pool, SELECT_HOLDER, (key_id,))
    if row is None:
        return None
    merchant = Merchant(merchant_id=row[4], name=row[5], payout_address=row[6], fee_bps=row[7])
    return KeyHolder(
        key_id=row[0],
        key_hash=bytes(row[1]).hex(),
        scopes=tuple(row[2]),
        revoked=row[3],
        merchant=merchant,
        rate_per_s=row[8],
        burst=row[9],
    )


def grant_mandate(
    conn: psycopg.Connection[Any],
    account: str,
    merchant_id: str,
    max_amount: int | None,
    actor: str,
) -> None:
    """Let the merchant collect from ``account`` (at most ``max_amount`` per
    payment; None: any amount). Granting again replaces the limit."""
    with conn.transaction():
        _require_merchant(conn, merchant_id)
        conn.execute(
            "INSERT INTO mandates (account_id, merchant_id, max_amount) VALUES (%s, %s, %s)"
            " ON CONFLICT (account_id, merchant_id) DO UPDATE SET max_amount = excluded.max_amount,"
            " granted_at = now(), revoked_at = NULL",
            (account, merchant_id, max_amount),
        )
        detail = {"account": account, "max_amount": max_amount}
        append(conn, actor, "mandate.granted", merchant_id, detail)


def revoke_mandate(
    conn: psycopg.Connection[Any], account: str, merchant_id: str, actor: str
) -> bool:
    with conn.transaction():
        cur = conn.execute(
            "UPDATE mandates SET revoked_at = now() WHERE account_id = %s AND merchant_id = %s"
            " AND revoked_at IS NULL RETURNING 1",
            (account, merchant_id),
        )
        if cur.fetchone() is None:
            return False
        append(conn, actor, "mandate.revoked", merchant_id, {"account": account})
        return True


def list_mandates(conn: psycopg.Connection[Any], merchant_id: str | None) -> list[tuple[Any, ...]]:
    """Live mandates: (account, merchant id, max amount or None, granted at)."""
    return conn.execute(
        "SELECT account_id, merchant_id, max_amount, granted_at FROM mandates"
        " WHERE revoked_at IS NULL AND (%s::text IS NULL OR merchant_id = %s)"
        " ORDER BY granted_at, account_id",
        (merchant_id, merchant_id),
    ).fetchall()


def live_mandate(account: str, merchant: str) -> str:
    """The query of ``account``'s live mandate for ``merchant`` (both SQL: a
    placeholder or a column): its ``max_amount`` (NULL: no limit), or no row."""
    return (
        f"SELECT max_amount FROM mandates WHERE account_id = {account}"  # noqa: S608 - SQL given
        f" AND merchant_id = {merchant} AND revoked_at IS NULL"
    )


LIVE_MANDATE = live_mandate("%(account)s", "%(merchant)s")


async def mandate_limit(
    pool: AsyncConnectionPool, account: str, merchant_id: str
) -> tuple[bool, int | None]:
    """(whether ``account`` has a live mandate for the merchant, its per-payment limit)."""
    row = await _one(pool, LIVE_MANDATE, {"account": account, "merchant": merchant_id})
    if row is None:
        return False, None
    return True, None if row[0] is None else int(row[0])

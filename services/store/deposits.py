"""Deposits on PostgreSQL: the last credit or reversal the ledger booked for
each deposit id, written in the ledger's transaction (``postgres.py``) and read
by the worker for a deposit its balance no longer remembers
(``streams/deposits.py``). A credit number only moves forward: the k-th credit,
then its reversal, then the (k+1)-th credit; a replayed older record is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from schemas.chain import DepositCredited, DepositReversed

# Credit numbers in order (``order``): the k-th credit 2k-1, its reversal 2k.
UPSERT = """
INSERT INTO deposits (deposit_id, account, amount, credit, tx_hash, block_number,
                      block_hash, updated_at)
VALUES (%(deposit_id)s, %(account)s, %(amount)s, %(credit)s, %(tx_hash)s,
        %(block_number)s, %(block_hash)s, %(at)s)
ON CONFLICT (deposit_id) DO UPDATE SET
    credit = excluded.credit,
    block_number = excluded.block_number,
    block_hash = excluded.block_hash,
    updated_at = excluded.updated_at
WHERE CASE WHEN excluded.credit > 0 THEN 2 * excluded.credit - 1 ELSE -2 * excluded.credit END
    > CASE WHEN deposits.credit > 0 THEN 2 * deposits.credit - 1 ELSE -2 * deposits.credit END
"""

CREDITS_OF = "SELECT deposit_id, credit FROM deposits WHERE deposit_id = ANY(%s)"


def signed_credit(r: DepositCredited | DepositReversed) -> int:
    """k for the k-th credit, -k for its reversal."""
    return r.credit if isinstance(r, DepositCredited) else -r.credit


def deposit_row(r: DepositCredited | DepositReversed) -> dict[str, Any]:
    if isinstance(r, DepositCredited):
        block = (r.block_number, r.block_hash)
        tx_hash = r.tx_hash
    else:
        block = (r.removed_block_number, r.removed_block_hash)
        tx_hash = r.deposit_id.split(":", 1)[0]
    return {
        "deposit_id": r.deposit_id,
        "account": r.account,
        "amount": r.amount,
        "credit": signed_credit(r),
        "tx_hash": tx_hash,
        "block_number": block[0],
        "block_hash": block[1],
        "at": r.occurred_at,
    }


def later(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per deposit: the furthest credit number among them."""
    furthest: dict[str, dict[str, Any]] = {}
    for row in rows:
        kept = furthest.get(row["deposit_id"])
        if kept is None or order(row["credit"]) > order(kept["credit"]):
            furthest[row["deposit_id"]] = row
    return list(furthest.values())


def order(credit: int) -> int:
    return 2 * credit - 1 if credit > 0 else -2 * credit


async def credits_of(conn: AsyncConnection[Any], deposit_ids: Sequence[str]) -> dict[str, int]:
    cur = await conn.execute(CREDITS_OF, (list(deposit_ids),))
    return {str(d): int(k) for d, k in await cur.fetchall()}

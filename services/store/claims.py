"""The claim store on PostgreSQL: each payment's one sequence number, and
whether settlement is halted (``services/store/halts.py``).

``claim`` runs one transaction of two statements, whatever the batch's size:
the INSERT of the ids not yet claimed (filtered in SQL first, so that replays
burn no counter; a concurrent claimer's row still wins through ON CONFLICT, at
the cost of one wasted counter), in the order given so that one batch's
counters are consecutive; then the SELECT of every requested id's claim. The
SELECT is a statement of its own so that, in READ COMMITTED, it sees a claim
that a concurrent transaction committed while the INSERT waited on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import (
    OperationalError,
    SequenceGeneratorLimitExceeded,
    UndefinedTable,
    UniqueViolation,
)
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from schemas.sequence import PARTITION_MAX, SEQUENCE_PARTITION_SHIFT
from services.errors import InvariantViolation, SchemaMissing, StoreUnavailable, require
from services.ports import Claim, ClaimRequest
from services.store import halts

CLAIM_NEW = """
INSERT INTO payment_claims (payment_id, payer_account, request_digest, partition, sequence)
SELECT r.payment_id, r.payer_account, r.request_digest, r.partition,
       (r.partition::bigint << %(shift)s::int) | nextval('settlement_counter')
FROM unnest(%(ids)s::uuid[], %(payers)s::text[], %(digests)s::text[], %(partitions)s::int[])
     WITH ORDINALITY AS r (payment_id, payer_account, request_digest, partition, ordinality)
WHERE NOT EXISTS (SELECT 1 FROM payment_claims c WHERE c.payment_id = r.payment_id)
ORDER BY r.ordinality
ON CONFLICT (payment_id) DO NOTHING
"""  # nextval is volatile: PostgreSQL evaluates it after the ORDER BY, in order

CLAIMS_OF = """
SELECT payment_id, payer_account, request_digest, sequence FROM payment_claims
WHERE payment_id = ANY(%s::uuid[])
"""

CLAIMS_BY_SEQUENCE = """
SELECT payment_id, payer_account, request_digest, sequence FROM payment_claims
WHERE sequence = ANY(%s::bigint[])
"""

NEXT_COUNTER = (
    "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM settlement_counter"
)

BIGINT_MAX = 2**63 - 1  # a larger (uint64) sequence cannot be in the table


class PostgresClaimStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def claim(self, requests: Sequence[ClaimRequest]) -> dict[uuid.UUID, Claim]:
        unique = _first_of_each(requests)
        if not unique:
            return {}
        with _translated("payments not claimed"):
            async with self.pool.connection() as conn, conn.transaction():
                claims = await _claim(conn, unique)
        require(
            claims.keys() == {r.payment_id for r in unique},
            "claims missing after claiming: %s",
            {r.payment_id for r in unique} - claims.keys(),
        )
        return claims

    async def claims_of(self, sequences: Sequence[int]) -> dict[int, Claim]:
        wanted = sorted({s for s in sequences if 0 <= s <= BIGINT_MAX})
        if not wanted:
            return {}
        with _translated("claims not read"):
            async with self.pool.connection() as conn:
                cur = await conn.execute(CLAIMS_BY_SEQUENCE, (wanted,))
                rows = await cur.fetchall()
        return {int(row[3]): Claim(row[0], row[1], row[2], int(row[3])) for row in rows}

    async def halt(self, reason: str) -> None:
        with _translated("settlement not halted"):
            async with self.pool.connection() as conn:
                await conn.execute(halts.HALT, (reason[:1000],))

    async def halted(self) -> str | None:
        with _translated("settlement halt not read"):
            async with self.pool.connection() as conn:
                cur = await conn.execute(halts.OPEN_HALT)
                row = await cur.fetchone()
        return str(row[0]) if row else None

    async def next_counter(self) -> int:
        with _translated("settlement counter not read"):
            async with self.pool.connection() as conn:
                cur = await conn.execute(NEXT_COUNTER)
                row = await cur.fetchone()
        if row is None:
            raise InvariantViolation("the settlement counter has no value")
        return int(row[0])


def _first_of_each(requests: Sequence[ClaimRequest]) -> list[ClaimRequest]:
    """The requests in order, each payment id once: its first request wins."""
    first: dict[uuid.UUID, ClaimRequest] = {}
    for r in requests:
        require(
            0 <= r.partition <= PARTITION_MAX,
            "partition %s out of range for %s",
            r.partition,
            r.payment_id,
        )
        first.setdefault(r.payment_id, r)
    return list(first.values())


async def _claim(
    conn: AsyncConnection[Any], requests: list[ClaimRequest]
) -> dict[uuid.UUID, Claim]:
    await conn.execute(
        CLAIM_NEW,
        {
            "shift": SEQUENCE_PARTITION_SHIFT,
            "ids": [r.payment_id for r in requests],
            "payers": [r.payer_account for r in requests],
            "digests": [r.request_digest for r in requests],
            "partitions": [r.partition for r in requests],
        },
    )
    cur = await conn.execute(CLAIMS_OF, ([r.payment_id for r in requests],))
    return {
        payment_id: Claim(payment_id, payer, digest, int(sequence))
        for payment_id, payer, digest, sequence in await cur.fetchall()
    }


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """psycopg's errors in paystream's terms (nothing of psycopg escapes)."""
    try:
        yield
    except UndefinedTable as exc:
        raise SchemaMissing(
            f"{what}: the database has no payment_claims schema "
            f"({exc.diag.message_primary}): run `paystream db migrate`"
        ) from exc
    except (OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"{what}: {exc}") from exc
    except UniqueViolation as exc:  # only the sequence's: payment ids conflict quietly
        raise InvariantViolation(f"{what}: a sequence number was claimed twice: {exc}") from exc
    except SequenceGeneratorLimitExceeded as exc:
        raise InvariantViolation(f"{what}: the settlement counter is exhausted: {exc}") from exc


UNFINISHED = """
SELECT count(*) FROM payment_claims c
WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.payment_id = c.payment_id
                  AND p.status IN ('SETTLED', 'FAILED', 'REJECTED'))
"""


def unfinished_claims(conn: psycopg.Connection[Any]) -> int:
    """Payments that claimed a sequence number and have no outcome in PostgreSQL
    yet: the current contract may have paid them, or may still."""
    row = conn.execute(UNFINISHED).fetchone()
    return int(row[0]) if row else 0

"""The start-up check that payments' on-chain identities cannot repeat.

Sequence numbers come from PostgreSQL's ``settlement_counter``, which never
goes back; but a database reset, or restored from an old backup, while the
contract is kept would hand out numbers the contract has already paid, and the
contract would skip those payments as paid. So before a worker starts, the next
counters are checked on chain, on every partition: if any is paid, the worker
refuses to start.
"""

from __future__ import annotations

from schemas.sequence import sequence_of
from services.errors import ConfigError
from services.ports import ChainClient, ClaimStore

AHEAD = 8  # counters checked past the next one (a restored backup may be a little behind)


async def require_unused_sequences(claims: ClaimStore, chain: ChainClient, partitions: int) -> None:
    """Raise ``ConfigError`` if a sequence the next claims would use is paid on chain."""
    first = await claims.next_counter()
    for counter in range(first, first + AHEAD):
        for partition in range(partitions):
            sequence = sequence_of(partition, counter)
            if await chain.is_settled(sequence):
                raise ConfigError(
                    f"sequence {sequence} (partition {partition}, counter {counter}) is already "
                    "paid on chain, but the database would hand it out again: the database does "
                    "not belong to this contract (reset both with `paystream stack reset`, or "
                    "point PAYSTREAM_PG_* at this contract's database)"
                )

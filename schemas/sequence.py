"""A payment's on-chain identity: its sequence number (a uint64 the settlement
contract pays at most once), laid out as ``partition << 40 | counter``.

The partition is its payer's (where the payment's state lives, so the chain
listener routes the settlement back there); the counter is a never-reused
number (PostgreSQL's ``settlement_counter``, at most ``COUNTER_MAX``).
"""

from __future__ import annotations

SEQUENCE_PARTITION_SHIFT = 40  # sequence = partition << 40 | counter
COUNTER_MAX = (1 << SEQUENCE_PARTITION_SHIFT) - 1  # the largest counter a sequence carries
# The largest partition whose sequences fit PostgreSQL's (signed) bigint.
PARTITION_MAX = (1 << (63 - SEQUENCE_PARTITION_SHIFT)) - 1


def sequence_of(partition: int, counter: int) -> int:
    """A payment's sequence number: its payer's partition and its counter."""
    return (partition << SEQUENCE_PARTITION_SHIFT) | counter


def partition_of(sequence: int) -> int:
    """The partition a sequence number came from (its payer's partition)."""
    return sequence >> SEQUENCE_PARTITION_SHIFT


def counter_of(sequence: int) -> int:
    """The counter a sequence number carries."""
    return sequence & COUNTER_MAX

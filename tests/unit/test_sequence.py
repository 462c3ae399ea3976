"""The sequence number's layout: partition << 40 | counter, both recoverable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.sequence import (
    COUNTER_MAX,
    PARTITION_MAX,
    SEQUENCE_PARTITION_SHIFT,
    counter_of,
    partition_of,
    sequence_of,
)


@given(st.integers(0, PARTITION_MAX), st.integers(0, COUNTER_MAX))
def test_partition_and_counter_round_trip(partition: int, counter: int) -> None:
    sequence = sequence_of(partition, counter)
    assert partition_of(sequence) == partition
    assert counter_of(sequence) == counter
    assert 0 <= sequence < 2**63  # a PostgreSQL bigint, a uint64 on chain


def test_the_layout_is_partition_above_40_bits_of_counter() -> None:
    assert SEQUENCE_PARTITION_SHIFT == 40
    assert sequence_of(3, 5) == 3 * 2**40 + 5
    assert sequence_of(PARTITION_MAX, COUNTER_MAX) == 2**63 - 1
    assert partition_of(2**40 - 1) == 0 and partition_of(2**40) == 1

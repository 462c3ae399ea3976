"""Offsets are committed only past handled records: Faust's head check let one
skipped record (and any at offset 0) be committed over."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import IntervalTree

from streams.commits import _new_offset, next_commit


def test_the_first_run_of_acked_offsets_is_committed() -> None:
    assert next_commit([31, 32, 33, 40], 31) == (34, 3)
    assert next_commit([], 31) == (None, 0)


def test_a_record_never_acked_at_the_head_holds_the_commit_back() -> None:
    assert next_commit([32, 33], 31) == (None, 0)  # 31 was skipped: Faust committed 34
    assert next_commit([1, 2], 0) == (None, 0)  # Faust skips its check at offset 0


def test_without_a_committed_offset_the_first_run_counts() -> None:
    assert next_commit([5, 6], None) == (7, 2)


def consumer(acked: list[int], committed: int, gaps: IntervalTree | None = None) -> Any:
    tp = TP("t", 0)
    return tp, SimpleNamespace(
        _acked={tp: acked},
        _acked_index={tp: set(acked)},
        _gap={tp: gaps if gaps is not None else IntervalTree()},
        _committed_offset={tp: committed},
    )


def test_the_consumer_method_keeps_what_it_offers_until_it_is_committed() -> None:
    tp, c = consumer([12, 10, 11, 15], 10)
    assert _new_offset(c, tp) == 13
    assert _new_offset(c, tp) == 13  # that commit was skipped: offered again
    assert c._acked[tp] == [10, 11, 12, 15] and c._acked_index[tp] == {10, 11, 12, 15}
    c._committed_offset[tp] = 13  # committed
    assert _new_offset(c, tp) is None  # 13 never acked
    assert c._acked[tp] == [15] and c._acked_index[tp] == {15}


def test_the_consumer_method_fills_known_gaps_and_holds_at_a_missing_head() -> None:
    tp, c = consumer([10, 13], 10, IntervalTree.from_tuples([(11, 13)]))  # 11, 12: markers
    assert _new_offset(c, tp) == 14
    tp, c = consumer([11, 12], 10)
    assert _new_offset(c, tp) is None and c._acked[tp] == [11, 12]

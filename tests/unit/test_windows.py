"""The worker's rolling windows (``streams/windows.py``) over an in-memory
store: what reaches the table, and when."""

from __future__ import annotations

from streams.windows import EXPIRES_S, PRUNE_EVERY_S, StageWindows
from tests.support.fakes import MemoryWindowStore

EMPTY_SECOND = b'{"ok":1,"failed":0,"rejected":0,"latency":{}}'


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_flush_writes_once_per_key_and_second_not_once_per_payment() -> None:
    clock, store = Clock(1_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    for _ in range(100):
        windows.record("scored", "ok", 3.0)
    clock.now += 1.0
    for _ in range(50):
        windows.record("scored", "ok", 3.0)
        windows.record("settled", "ok", 900.0)
    assert store.writes == []  # counted in memory until the flush
    windows.flush(2)
    assert sorted(store.writes) == [
        ("scored:2", 1_000, 2),
        ("scored:2", 1_001, 2),
        ("settled:2", 1_001, 2),
    ]
    windows.flush(2)  # nothing new: nothing written
    assert len(store.writes) == 3
    clock.now += 1
    assert windows.snapshot()["stages"]["scored"]["10s"]["count"] == 150


def test_counts_not_yet_written_are_in_the_snapshot_and_merge_with_the_table() -> None:
    clock, store = Clock(1_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    windows.record("settled", "ok", 10.0)
    windows.flush(0)
    windows.record("settled", "failed", None)  # not written yet
    windows.record("settled", "ok", 12.0)
    clock.now = 1_001.0
    snap = windows.snapshot()
    assert snap["partitions"] == [0]
    one = snap["stages"]["settled"]["1s"]
    assert (one["ok"], one["failed"], one["success_rate"]) == (2, 1, 2 / 3)
    windows.flush(0)  # merged into what the key holds for that second
    assert windows.snapshot() == snap
    assert store.writes == [("settled:0", 1_000, 0)] * 2


def test_every_partition_a_worker_holds_adds_up_and_a_restart_keeps_them() -> None:
    clock, store = Clock(2_000.0), MemoryWindowStore()
    first = StageWindows(store, clock)
    for partition in (0, 1, 3):  # as if owned one after another
        for _ in range(partition + 1):
            first.record("scored", "ok", 1.0)
        first.flush(partition)
    clock.now = 2_001.5
    restarted = StageWindows(store, clock)  # a new worker restoring the same table
    snap = restarted.snapshot()
    assert snap["partitions"] == [0, 1, 3]
    assert snap["stages"]["scored"]["10s"]["count"] == 1 + 2 + 4


def test_expired_windows_are_not_written_and_are_dropped() -> None:
    clock, store = Clock(5_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    store.put("scored:0", 5_000 - EXPIRES_S - 5, EMPTY_SECOND, 0)  # restored, long expired
    windows.record("scored", "ok", None)
    clock.now += EXPIRES_S + 1  # the count's second expired meanwhile
    windows.record("scored", "ok", None)
    clock.now += PRUNE_EVERY_S
    windows.flush(0)
    assert [second for _, second in store.data] == [5_000 + EXPIRES_S + 1]

"""The worker's rolling windows (``streams/windows.py``) over an in-memory
store: what reaches the table, and when."""

from __future__ import annotations

from streams.windows import EXPIRES_S, FLUSH_EVERY_S, PRUNE_EVERY_S, StageWindows
from tests.support.fakes import MemoryWindowStore


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_batch_is_written_once_per_key_and_second_not_once_per_payment() -> None:
    clock, store = Clock(1_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    for _ in range(100):
        windows.record("scored", "ok", 3.0)
        windows.flush(2)  # not due yet: nothing written
    assert store.writes == 0
    clock.now += FLUSH_EVERY_S
    windows.flush(2)
    assert store.writes == 1 and set(store.data) == {("scored:2", 1_000)}
    clock.now += 1
    assert windows.snapshot()["stages"]["scored"]["1s"]["count"] == 100


def test_counts_not_yet_written_are_in_the_snapshot_and_merge_with_the_table() -> None:
    clock, store = Clock(1_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    windows.record("settled", "ok", 10.0)
    clock.now += FLUSH_EVERY_S
    windows.flush(0)
    windows.record("settled", "failed", None)  # pending
    clock.now += FLUSH_EVERY_S
    windows.record("settled", "ok", 12.0)
    clock.now = 1_001.0
    snap = windows.snapshot()
    assert snap["partitions"] == [0]
    one = snap["stages"]["settled"]["1s"]
    assert (one["ok"], one["failed"], one["success_rate"]) == (2, 1, 2 / 3)
    windows.flush(0)  # merged into the key's stored second
    assert windows.snapshot() == snap


def test_every_partition_a_worker_holds_adds_up_and_a_restart_keeps_them() -> None:
    clock, store = Clock(2_000.0), MemoryWindowStore()
    first = StageWindows(store, clock)
    for partition in (0, 1, 3):
        for _ in range(partition + 1):
            first.record("scored", "ok", 1.0)
        clock.now += FLUSH_EVERY_S
        first.flush(partition)
    clock.now = 2_001.5
    restarted = StageWindows(store, clock)  # a new worker restoring the same table
    snap = restarted.snapshot()
    assert snap["partitions"] == [0, 1, 3]
    assert snap["stages"]["scored"]["10s"]["count"] == 1 + 2 + 4


def test_expired_windows_are_not_written_and_are_dropped() -> None:
    clock, store = Clock(5_000.0), MemoryWindowStore()
    windows = StageWindows(store, clock)
    store.put("scored:0", 5_000 - EXPIRES_S - 5, b'{"ok":1,"failed":0,"rejected":0,"latency":{}}')
    windows.record("scored", "ok", None)
    clock.now += EXPIRES_S + 1  # the pending count's second expired meanwhile
    windows.record("scored", "ok", None)
    clock.now += PRUNE_EVERY_S
    windows.flush(0)
    assert [second for _, second in store.data] == [5_000 + EXPIRES_S + 1]

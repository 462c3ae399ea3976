"""The worker's table store (streams/preload.py) on a reader fake: a newly
active partition is loaded in bulk (the last write of each key; a None value
deletes), Faust's recovery is handed the offset reached once, a partition
kept active is not read again, one that comes back is read afresh, and a
failed read leaves the whole changelog to Faust's recovery. The real reader
against the broker: tests/integration/test_table_store.py."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import faust
import pytest
from confluent_kafka import KafkaException
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

from streams import preload

CHANGELOG = "t-store-t-changelog"
Batch = list[tuple[int, bytes | None, bytes | None]]


class FakeReader:
    """What the changelog holds, per partition: (key, value) in order."""

    logs: ClassVar[dict[int, list[tuple[Any, bytes | None]]]] = {}
    reads: ClassVar[list[set[int]]] = []
    fail_after: ClassVar[int | None] = None

    def __init__(self, brokers: str, tps: Any) -> None:
        self.tps = {tp for tp in tps if self.logs.get(tp.partition)}
        FakeReader.reads.append({tp.partition for tp in tps})
        self.last = {tp: len(self.logs[tp.partition]) - 1 for tp in self.tps}
        self._batches: Iterator[Batch] = iter(
            [
                [(tp.partition, json.dumps(k).encode(), v)]
                for tp in sorted(self.tps)
                for k, v in self.logs[tp.partition]
            ]
        )
        self._served = 0

    def next_batch(self) -> Batch | None:
        if self.fail_after is not None and self._served >= self.fail_after:
            raise KafkaException("broker gone")
        self._served += 1
        return next(self._batches, None)

    def close(self) -> None:
        pass


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    FakeReader.logs, FakeReader.reads, FakeReader.fail_after = {}, [], None
    monkeypatch.setattr(preload, "ChangelogReader", FakeReader)
    app = faust.App("t-store", broker="kafka://127.0.0.1:1", store="paystream://")
    table = app.Table("t", partitions=4, key_type=str, value_type=bytes)
    yield table.data


async def _rebalance(store: Any, monkeypatch: pytest.MonkeyPatch, *partitions: int) -> None:
    actives = {TP(CHANGELOG, p) for p in partitions} | {TP("payments.requested", 0)}
    monkeypatch.setattr(store.app.assignor, "assigned_actives", lambda: actives)
    await store.on_rebalance(actives, set(), actives)


async def test_an_active_partition_is_loaded_and_its_offset_handed_over_once(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(store, preload.Store)
    FakeReader.logs = {
        0: [("a", b"1"), ("b", b"2"), ("a", b"3"), ("b", None)],
        1: [("c", b"4")],
        2: [("elsewhere", b"5")],  # not assigned here
    }
    await _rebalance(store, monkeypatch, 0, 1, 3)
    assert dict(store.data) == {"a": b"3", "c": b"4"}
    assert store._key_partition == {"a": 0, "c": 1}
    assert store.persisted_offset(TP(CHANGELOG, 0)) == 3
    assert store.persisted_offset(TP(CHANGELOG, 0)) is None  # once: then Faust's own offset
    assert store.persisted_offset(TP(CHANGELOG, 3)) is None  # empty: Faust reads from the start

    await _rebalance(store, monkeypatch, 0, 1)  # both kept: not read again
    assert FakeReader.reads == [{0, 1, 3}]
    assert store.persisted_offset(TP(CHANGELOG, 1)) is None


async def test_a_partition_that_comes_back_is_read_afresh(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeReader.logs = {0: [("a", b"1"), ("gone", b"x")]}
    await _rebalance(store, monkeypatch, 0)
    await _rebalance(store, monkeypatch, 1)  # partition 0 went elsewhere...
    # ...where "gone" was deleted, and compaction has removed its records since:
    FakeReader.logs = {0: [("a", b"2")]}
    await _rebalance(store, monkeypatch, 0)  # ...and came back: what it holds now
    assert dict(store.data) == {"a": b"2"}
    assert FakeReader.reads[-1] == {0}
    assert store.persisted_offset(TP(CHANGELOG, 0)) == 0


async def test_a_failed_read_leaves_the_partition_to_fausts_recovery(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeReader.logs = {0: [("a", b"1"), ("b", b"2"), ("c", b"3")]}
    FakeReader.fail_after = 2
    await _rebalance(store, monkeypatch, 0)
    assert dict(store.data) == {}  # what was read is dropped
    assert store.persisted_offset(TP(CHANGELOG, 0)) is None  # Faust reads it all
    FakeReader.fail_after = None
    await _rebalance(store, monkeypatch, 0)  # not whole: read again next time
    assert dict(store.data) == {"a": b"1", "b": b"2", "c": b"3"}


async def test_a_windowed_tables_keys_are_kept_as_faust_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A windowed table's changelog key is a JSON list (key, window range):
    kept as a tuple, as Faust's recovery keeps it (streams/windows.py)."""
    FakeReader.logs, FakeReader.reads, FakeReader.fail_after = {}, [], None
    monkeypatch.setattr(preload, "ChangelogReader", FakeReader)
    app = faust.App("t-store", broker="kafka://127.0.0.1:1", store="paystream://")
    windowed = app.Table("w", partitions=4, key_type=str, value_type=bytes).tumbling(1.0)
    store: Any = windowed.table.data
    FakeReader.logs = {0: [(["fraud:0", [10.0, 10.9]], b"counts")]}
    actives = {TP("t-store-w-changelog", 0)}
    monkeypatch.setattr(app.assignor, "assigned_actives", lambda: actives)
    await store.on_rebalance(actives, set(), actives)
    assert dict(store.data) == {("fraud:0", (10.0, 10.9)): b"counts"}


def _squeezed(source: str) -> str:
    return "".join(source.split())


def test_pinned_to_the_faust_recovery_it_feeds() -> None:
    """The store loads in its ``on_rebalance``, which Faust's table manager
    awaits before the recovery takes each active partition's
    ``persisted_offset`` as where to start reading."""
    manager = _squeezed(inspect.getsource(TableManager.on_rebalance))
    tables_first = manager.index("awaitT(table.on_rebalance)(")
    assert tables_first < manager.index("awaitT(self.recovery.on_rebalance)(")
    add = _squeezed(inspect.getsource(Recovery._add))
    assert "persisted_offset=table.persisted_offset(tp)" in add
    assert "offsets[tp]=persisted_offset" in add

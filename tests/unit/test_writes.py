"""No commit before the writes it covers are in Kafka (streams/writes.py): the
tracker of unacknowledged writes, and the consumer's commit that waits on it."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import faust.transport.consumer
import pytest
from faust.types import TP

from services.errors import InfrastructureError
from services.settings import Settings
from streams import writes as writes_module
from streams.app import faust_app
from streams.transport import FastConsumer
from streams.writes import EXIT_WRITE_LOST, DurableProducer, Writes


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


async def test_settled_waits_for_the_earlier_writes_and_every_later_one() -> None:
    writes = Writes()
    first, second = asyncio.Future[int](), asyncio.Future[int]()
    writes.track(second)
    waiting = asyncio.ensure_future(writes.settled([first], 5.0))
    await asyncio.sleep(0.01)
    first.set_result(1)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the second one is still on its way
    second.set_result(2)
    assert await waiting
    assert not writes.recent


async def test_a_write_not_acknowledged_in_time_is_reported() -> None:
    writes = Writes()
    slow = asyncio.Future[int]()
    writes.track(slow)
    assert not await writes.settled([], 0.01)
    slow.set_result(1)
    assert writes.unwritten([slow]) == []


async def test_a_cancelled_write_holds_every_later_commit() -> None:
    writes = Writes()
    gone = asyncio.Future[int]()
    writes.track(gone)
    gone.cancel()
    assert writes.unwritten(writes.take()) == []
    assert writes.lost == 1
    assert not await writes.settled([], 0.01)


async def test_a_refused_write_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[int] = []
    monkeypatch.setattr(writes_module, "die", lambda code, _message: stopped.append(code))
    writes = Writes()
    refused = asyncio.Future[int]()
    writes.track(refused)
    refused.set_exception(RuntimeError("NOT_ENOUGH_REPLICAS"))
    assert writes.unwritten(writes.take()) == []
    assert stopped == [EXIT_WRITE_LOST]


async def test_writes_no_commit_follows_are_dropped_once_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writes_module, "COMPACT_AT", 4)
    writes = Writes()
    writes.compact_at = 4
    done = [asyncio.Future[int]() for _ in range(3)]
    for write in done:
        write.set_result(1)
        writes.track(write)
    pending = asyncio.Future[int]()
    writes.track(pending)  # the fourth: the three acknowledged ones go
    assert writes.recent == [pending]


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return faust_app(Settings(), "writes-test", datadir=str(tmp_path))


def test_the_worker_app_tracks_its_writes(app: Any) -> None:
    assert isinstance(app.producer, DurableProducer)
    assert isinstance(app.consumer, FastConsumer)


@pytest.fixture
def commits(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[TP, int]]:
    """What reaches Faust's own commit (Kafka's commit is not called)."""
    committed: list[dict[TP, int]] = []

    async def faust_commit(_self: Any, offsets: dict[TP, int], *_: Any, **__: Any) -> bool:
        committed.append(dict(offsets))
        return True

    monkeypatch.setattr(FastConsumer.__mro__[1], "_commit_offsets", faust_commit)
    monkeypatch.setattr("streams.transport.WRITES_TIMEOUT_S", 0.05)
    return committed


async def test_while_records_flow_offsets_are_committed_once_their_writes_are_in(
    app: Any, commits: list[dict[TP, int]]
) -> None:
    consumer, writes = app.consumer, app.producer.writes
    tp = TP("t", 0)
    changelog = asyncio.Future[int]()
    writes.track(changelog)  # a table change of a record before offset 13
    assert not await consumer._commit_offsets({tp: 13})  # staged, with that write
    later = asyncio.Future[int]()
    writes.track(later)  # a record's write between 13 and 20
    assert not await consumer._commit_offsets({tp: 20})  # 13 still waits
    assert commits == []
    changelog.set_result(1)
    assert await consumer._commit_offsets({tp: 20})
    assert commits == [{tp: 13}]  # 20 is staged now, with the later write
    consumer._committed_offset[tp] = 13
    assert not await consumer._commit_offsets({tp: 25})
    later.set_result(1)
    assert await consumer._commit_offsets({tp: 25})
    assert commits == [{tp: 13}, {tp: 20}]


async def test_when_flow_stops_the_latest_offsets_are_committed_once_written(
    app: Any, commits: list[dict[TP, int]]
) -> None:
    consumer, writes = app.consumer, app.producer.writes
    tp = TP("t", 0)
    consumer.flow_active = False  # a rebalance: Faust commits before it gives partitions up
    changelog = asyncio.Future[int]()
    writes.track(changelog)
    assert not await consumer._commit_offsets({tp: 13})  # not in Kafka within the timeout
    assert commits == []
    changelog.set_result(1)
    assert await consumer._commit_offsets({tp: 13})
    assert commits == [{tp: 13}]


async def test_offsets_staged_in_an_earlier_generation_are_dropped(
    app: Any, commits: list[dict[TP, int]]
) -> None:
    consumer = app.consumer
    tp = TP("t", 0)
    assert not await consumer._commit_offsets({tp: 13})
    app.consumer_generation_id += 1  # a rebalance in between
    assert not await consumer._commit_offsets({tp: 20})  # 13 dropped, 20 staged
    assert await consumer._commit_offsets({tp: 21})
    assert commits == [{tp: 20}]


def test_pinned_to_the_faust_commit_it_wraps() -> None:
    """``FastConsumer._commit_offsets`` replaces the offsets Faust commits and
    relies on it updating the committed offsets only from what it is given."""
    source = _squeezed(inspect.getsource(faust.transport.consumer.Consumer._commit_offsets))
    assert "awaitself.app.producer.flush()" in source
    assert "self._committed_offset.update(committable_offsets)" in source
    commit_tps = _squeezed(inspect.getsource(faust.transport.consumer.Consumer._commit_tps))
    assert "returnawaitself._commit_offsets(" in commit_tps


async def test_flushed_waits_for_every_write_and_leaves_them_to_the_commits() -> None:
    writes = Writes()
    staged, recent = asyncio.Future[int](), asyncio.Future[int]()
    writes.staged = [staged]  # the staged offsets wait for it
    writes.track(recent)
    assert not await writes.flushed(0.01)
    staged.set_result(1)
    recent.set_result(1)
    assert await writes.flushed(0.01)
    assert writes.recent == [recent]  # still there for the next staging


async def test_durable_raises_when_kafka_does_not_acknowledge_in_time(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writes_module, "FLUSH_TIMEOUT_S", 0.01)
    producer = app.producer
    flushes: list[bool] = []

    async def faust_flush() -> None:
        flushes.append(True)

    monkeypatch.setattr(producer, "flush", faust_flush)
    slow = asyncio.Future[int]()
    producer.writes.track(slow)
    with pytest.raises(InfrastructureError):
        await writes_module.durable(producer)
    slow.set_result(1)
    await writes_module.durable(producer)
    assert flushes == [True, True]

"""No commit before the writes it covers are in Kafka (streams/writes.py): the
tracker of unacknowledged writes, and the consumer's commit that waits on it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from services.settings import Settings
from streams import writes as writes_module
from streams.app import faust_app
from streams.transport import FastConsumer
from streams.writes import EXIT_WRITE_LOST, DurableProducer, Writes


async def test_settled_waits_for_every_write_made_before_it() -> None:
    writes = Writes()
    first, second = asyncio.Future[int](), asyncio.Future[int]()
    writes.track(first)
    writes.track(second)
    waiting = asyncio.ensure_future(writes.settled(5.0))
    await asyncio.sleep(0.01)
    first.set_result(1)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the second one is still on its way
    second.set_result(2)
    assert await waiting
    assert not writes.pending


async def test_a_write_not_acknowledged_in_time_holds_the_commit() -> None:
    writes = Writes()
    slow = asyncio.Future[int]()
    writes.track(slow)
    assert not await writes.settled(0.01)
    slow.set_result(1)
    assert await writes.settled(0.01)


async def test_a_cancelled_write_holds_every_later_commit() -> None:
    writes = Writes()
    gone = asyncio.Future[int]()
    writes.track(gone)
    gone.cancel()
    await asyncio.sleep(0)
    assert writes.lost == 1
    assert not await writes.settled(0.01)


async def test_a_refused_write_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[int] = []
    monkeypatch.setattr(writes_module, "die", lambda code, _message: stopped.append(code))
    writes = Writes()
    refused = asyncio.Future[int]()
    writes.track(refused)
    refused.set_exception(RuntimeError("NOT_ENOUGH_REPLICAS"))
    await asyncio.sleep(0)
    assert stopped == [EXIT_WRITE_LOST]
    assert not await writes.settled(0.01)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return faust_app(Settings(), "writes-test", datadir=str(tmp_path))


def test_the_worker_app_tracks_its_writes(app: Any) -> None:
    assert isinstance(app.producer, DurableProducer)
    assert isinstance(app.consumer, FastConsumer)


async def test_a_commit_waits_for_the_writes_and_is_skipped_while_one_is_missing(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed: list[dict[TP, int]] = []

    async def faust_commit(_self: Any, offsets: dict[TP, int], *_: Any, **__: Any) -> bool:
        committed.append(dict(offsets))
        return True

    parent = FastConsumer.__mro__[1]
    monkeypatch.setattr(parent, "_commit_offsets", faust_commit)
    monkeypatch.setattr("streams.transport.WRITES_TIMEOUT_S", 0.05)
    consumer, writes = app.consumer, app.producer.writes
    changelog = asyncio.Future[int]()
    writes.track(changelog)
    offsets = {TP("t", 0): 13}
    assert not await consumer._commit_offsets(offsets)
    assert committed == []
    changelog.set_result(1)
    assert await consumer._commit_offsets(offsets)
    assert committed == [offsets]

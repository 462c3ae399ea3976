"""The tuned Faust transport (streams/transport.py): pinned to the Faust
internals it relies on, and its fast path taken only when delivery cannot block."""

from __future__ import annotations

import asyncio
import inspect
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import faust.transport.consumer
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from services.settings import Settings
from streams.app import faust_app
from streams.transport import FAUST_VERSION, FastConsumer, TunedConsumerThread, undelivered


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pinned_to_the_faust_version_read() -> None:
    assert metadata.version("faust-streaming") == FAUST_VERSION, (
        "streams/transport.py relies on faust-streaming internals: re-read "
        "Consumer._drain_messages and AIOKafkaConsumerThread._create_worker_consumer"
    )


def test_wait_first_is_called_only_around_each_delivery() -> None:
    module = Path(inspect.getfile(faust.transport.consumer)).read_text()
    assert module.count("self.wait_first(") == 1
    drain = _squeezed(inspect.getsource(faust.transport.consumer.Consumer._drain_messages))
    assert "awaitself.wait_first(callback(message),self.suspend_flow.wait())" in drain


def test_the_fetch_attributes_are_read_when_the_consumer_starts() -> None:
    start = _squeezed(inspect.getsource(AIOKafkaConsumer.start))
    assert "fetch_min_bytes=self._fetch_min_bytes" in start
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = Settings(faust_fetch_min_bytes=65536, faust_fetch_max_wait_ms=7)
    app = faust_app(settings, "transport-test", datadir=str(tmp_path))
    topic = app.topic("transport-test-topic")
    app.topics.add(topic)  # as an agent's subscription would
    return app


async def _deliver(consumer: FastConsumer) -> tuple[bool, int]:
    """(whether the delivery ran in the caller's task, its result)."""
    caller = asyncio.current_task()
    ran_in: list[asyncio.Task[Any] | None] = []

    async def delivery() -> int:
        ran_in.append(asyncio.current_task())
        return 7

    results = await consumer.wait_first(delivery(), consumer.suspend_flow.wait())
    assert results.results == [7] and not results.stopped
    return ran_in == [caller], results.results[0]


async def test_a_delivery_that_cannot_block_is_awaited_directly(app: Any) -> None:
    consumer = app.consumer
    assert isinstance(consumer, FastConsumer)
    app.flow_control.resume()
    assert consumer.delivery_cannot_block()
    assert await _deliver(consumer) == (True, 7)


async def test_faust_path_while_flow_is_suspended(app: Any) -> None:
    consumer = app.consumer
    app.flow_control.suspend()
    assert not consumer.delivery_cannot_block()
    assert await _deliver(consumer) == (False, 7)


async def test_faust_path_while_a_stream_queue_is_full(app: Any) -> None:
    consumer = app.consumer
    app.flow_control.resume()
    topic = next(iter(app.topics))
    while not topic.queue.full():
        topic.queue.put_nowait(None)
    assert not consumer.delivery_cannot_block()
    assert await _deliver(consumer) == (False, 7)


async def test_faust_path_while_the_producer_buffer_is_over_its_limit(app: Any) -> None:
    consumer = app.consumer
    app.flow_control.resume()
    buffer = app.producer.buffer
    for _ in range(buffer.max_messages + 1):
        buffer.pending.put_nowait(None)
    assert not consumer.delivery_cannot_block()


async def test_the_worker_consumer_fetches_with_the_tuning(app: Any) -> None:
    thread = app.consumer._new_consumer_thread()
    assert isinstance(thread, TunedConsumerThread)
    built = thread._create_worker_consumer(app.transport)
    assert (built._fetch_min_bytes, built._fetch_max_wait_ms) == (65536, 7)


def _record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@pytest.fixture
def fetching(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's consumer with one assigned partition whose fetch returns
    offsets 5 to 9; seeks are recorded (``consumer.seeks``) instead of sent."""
    consumer = app.consumer
    app.flow_control.resume()
    tp = TP("transport-test-topic", 0)
    consumer.tp, consumer.seeks, consumer.while_fetching = tp, [], lambda: None
    consumer._active_partitions = {tp}

    async def getmany(active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:  # noqa: ASYNC109 - Faust's signature
        consumer.while_fetching()
        return {tp: [_record(tp, offset) for offset in range(5, 10)]}

    async def seek_wait(partitions: dict[TP, int]) -> None:
        consumer.seeks.append(dict(partitions))

    monkeypatch.setattr(consumer, "_getmany", getmany)
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer, "highwater", lambda tp: 10)
    return consumer


def test_undelivered_is_the_first_record_after_the_last_one_handed_on() -> None:
    a, b, c = TP("t", 0), TP("t", 1), TP("t", 2)
    fetched = {a: [_record(a, o) for o in (3, 4, 5)], b: [_record(b, 7)], c: []}
    assert undelivered(fetched, {a: 3, b: 7}) == {a: 4}
    assert undelivered(fetched, {}) == {a: 3, b: 7}
    assert undelivered(fetched, {a: 5, b: 7}) == {}


async def test_every_fetched_record_is_delivered_and_nothing_sought(fetching: Any) -> None:
    offsets = [m.offset async for _, m in fetching.getmany(timeout=0.1)]
    assert offsets == [5, 6, 7, 8, 9] and fetching.seeks == []


async def test_a_partition_paused_while_fetched_is_read_again(fetching: Any) -> None:
    """Faust drops the records of a partition paused while its fetch was in
    flight; the consumer seeks it back to the first of them."""
    fetching._read_offset[fetching.tp] = 4
    fetching.while_fetching = lambda: fetching.pause_partitions({fetching.tp})
    assert [m async for _, m in fetching.getmany(timeout=0.1)] == []
    assert fetching.seeks == [{fetching.tp: 5}]
    assert fetching._read_offset[fetching.tp] == 5  # Faust delivers offset 5 again


async def test_the_rest_of_a_fetch_is_read_again_after_a_pause(fetching: Any) -> None:
    offsets = []
    async for _, message in fetching.getmany(timeout=0.1):
        offsets.append(message.offset)
        if message.offset == 6:
            fetching.pause_partitions({fetching.tp})
    assert offsets == [5, 6] and fetching.seeks == [{fetching.tp: 7}]


async def test_records_dropped_by_a_rebalance_are_left_to_it(fetching: Any) -> None:
    fetching.app.consumer_generation_id = 1

    def rebalance() -> None:
        fetching.pause_partitions({fetching.tp})
        fetching.app.consumer_generation_id = 2

    fetching.while_fetching = rebalance
    assert [m async for _, m in fetching.getmany(timeout=0.1)] == []
    assert fetching.seeks == []

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
from streams.transport import FAUST_VERSION, REREADS, FastConsumer, InOrder, TunedConsumerThread


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


A, B = TP("t", 0), TP("t", 1)


def test_records_pass_in_order_from_the_sought_offset() -> None:
    order = InOrder()
    order.sought({A: 5, B: None})
    assert [order.admit(A, o) for o in (5, 6, 7)] == [None, None, None]
    assert order.admit(A, 6) is None  # one it had: passes, Faust drops it
    assert order.admit(A, 9) == 8  # a hole at 8
    assert order.admit(B, 40) is None and order.admit(B, 42) == 41  # nothing committed: any first


def test_a_partition_read_again_takes_its_records_from_there() -> None:
    order = InOrder()
    order.sought({A: 5})
    assert order.admit(A, 9) == 5
    order.count_rereads({A: 5})
    order.moved({A: 5})
    assert order.admit(A, 5) is None and order.admit(A, 6) is None and order.tries == {}


def test_an_offset_that_never_comes_is_given_up_after_the_rereads() -> None:
    order = InOrder()
    order.sought({A: 5})
    for _ in range(REREADS):
        assert order.admit(A, 9) == 5
        order.count_rereads({A: 5})
        order.moved({A: 5})
    assert order.admit(A, 9) == 5
    order.count_rereads({A: 5})
    order.moved({A: 5})  # gone from Kafka: whatever comes next
    assert order.admit(A, 9) is None and order.admit(A, 11) == 10


@pytest.fixture
def fetching(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's consumer with one assigned partition whose committed offset is
    ``consumer.committed_at`` (5; None: never committed, its first offset is 0)
    and whose fetches return ``consumer.fetches`` (offsets) in turn; seeks are
    recorded (``consumer.seeks``) instead of sent."""
    consumer = app.consumer
    app.flow_control.resume()
    tp = TP("transport-test-topic", 0)
    app.topics._acking_topics.add(tp.topic)  # as an agent's subscription does
    consumer.tp, consumer.seeks, consumer.while_fetching = tp, [], lambda: None
    consumer._active_partitions = {tp}

    async def getmany(active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:  # noqa: ASYNC109 - Faust's signature
        consumer.while_fetching()
        return {tp: [_record(tp, offset) for offset in consumer.fetches.pop(0)]}

    async def seek_to_committed() -> dict[TP, int | None]:
        return {tp: consumer.committed_at}

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        return dict.fromkeys(partitions, 0)

    async def seek_wait(partitions: dict[TP, int]) -> None:
        consumer.seeks.append(dict(partitions))

    monkeypatch.setattr(consumer._thread, "seek_to_committed", seek_to_committed)
    monkeypatch.setattr(consumer._thread, "earliest_offsets", earliest_offsets)
    consumer.committed_at = 5
    monkeypatch.setattr(consumer, "_getmany", getmany)
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer, "highwater", lambda tp: 10)
    return consumer


async def _offsets(consumer: Any) -> list[int]:
    return [m.offset async for _, m in consumer.getmany(timeout=0.1)]


async def test_records_in_order_are_delivered_and_nothing_sought(fetching: Any) -> None:
    await fetching.perform_seek()
    fetching.fetches = [[5, 6, 7], [8, 9]]
    assert await _offsets(fetching) == [5, 6, 7]
    assert await _offsets(fetching) == [8, 9] and fetching.seeks == []


async def test_records_faust_dropped_for_a_paused_partition_are_read_again(fetching: Any) -> None:
    """Faust drops the records of a partition paused while its fetch was in
    flight; its next records are held back and it is read again from the hole."""
    await fetching.perform_seek()
    fetching.fetches = [[5, 6, 7], [8, 9], [5, 6, 7, 8, 9]]
    fetching.while_fetching = lambda: fetching.pause_partitions({fetching.tp})
    assert await _offsets(fetching) == []
    fetching.resume_partitions({fetching.tp})
    fetching.while_fetching = lambda: None
    assert await _offsets(fetching) == [] and fetching.seeks == [{fetching.tp: 5}]
    assert fetching._read_offset[fetching.tp] == 5  # Faust delivers offset 5 again
    assert await _offsets(fetching) == [5, 6, 7, 8, 9]


async def test_records_delivered_before_the_seek_to_committed_are_read_again(fetching: Any) -> None:
    """Records handed on while an assignment's seek was under way (a stream
    skips them while flow is off): the seek's offset is the one that counts."""
    fetching.fetches = [[5, 6, 7], [8]]
    assert await _offsets(fetching) == [5, 6, 7]
    await fetching.perform_seek()
    assert await _offsets(fetching) == [] and fetching.seeks == [{fetching.tp: 5}]


async def test_nothing_is_sought_while_flow_is_off(fetching: Any) -> None:
    """A rebalance seeks every partition it assigns to its committed offset."""
    await fetching.perform_seek()
    fetching.fetches = [[7, 8]]
    fetching.while_fetching = fetching.stop_flow
    assert await _offsets(fetching) == [] and fetching.seeks == []


async def test_a_partition_never_committed_is_read_from_its_first_offset(fetching: Any) -> None:
    """Records skipped before the group's first commit on a partition (a
    stream skips those delivered while flow is off) are read again: the
    partition starts at its first offset."""
    fetching.committed_at = None
    await fetching.perform_seek()
    fetching.fetches = [[3, 4]]
    assert await _offsets(fetching) == [] and fetching.seeks == [{fetching.tp: 0}]

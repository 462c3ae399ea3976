"""Kafka helpers for tests: fresh topics and bounded consumption."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from services.bootstrap import kafka_consumer_config
from services.errors import PaystreamError
from services.settings import Settings
from streams.ops.topics import delete_topics

log = logging.getLogger("tests.kafka")


def fresh_topics(settings: Settings, *prefixes: str, partitions: int = 4) -> list[str]:
    """Create one new topic per prefix (with a random suffix) and return the names."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"{prefix}.{suffix}" for prefix in prefixes]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions) for n in names])
    for future in futures.values():
        future.result(timeout=30)
    return names


def consume(
    settings: Settings,
    topic: str,
    count: int,
    *,
    timeout_s: float,
    while_ok: Callable[[], None] = lambda: None,
) -> list[Message]:
    """Read up to ``count`` records from the start of ``topic`` within ``timeout_s``.

    ``while_ok`` runs between polls and may raise to stop early (a dead worker).
    """
    consumer = Consumer(kafka_consumer_config(settings, f"test-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    received: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < count and time.monotonic() < deadline:
            while_ok()
            for msg in consumer.consume(num_messages=100, timeout=1.0):
                if msg.error() is not None:
                    raise AssertionError(f"consumer error: {msg.error()}")
                received.append(msg)
    finally:
        consumer.close()
    return received


def read_all(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record ``topic`` holds now (each partition read to its end offset)."""
    consumer = Consumer(kafka_consumer_config(settings, f"test-{uuid.uuid4().hex[:8]}"))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        ends: dict[int, int] = {}
        assigned = []
        for partition in metadata.topics[topic].partitions:
            low, high = _watermarks(consumer, TopicPartition(topic, partition), timeout_s)
            if high > low:
                ends[partition] = high
                assigned.append(TopicPartition(topic, partition, low))
        consumer.assign(assigned)
        received: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=1.0):
                if msg.error() is not None:
                    raise AssertionError(f"consumer error: {msg.error()}")
                received.append(msg)
                if int(msg.offset() or 0) + 1 >= ends.get(int(msg.partition() or 0), 0):
                    ends.pop(int(msg.partition() or 0), None)
        assert not ends, f"partitions not read to their end: {ends}"
        return received
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, where: TopicPartition, timeout_s: float) -> tuple[int, int]:
    """A partition's first and end offsets (a new topic's leader may not be known
    at once: NOT_LEADER_FOR_PARTITION is asked again, for up to ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(where, timeout=timeout_s)
            return int(low), int(high)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def delete_topics_quietly(settings: Settings, prefix: str) -> None:
    """Clean up a run's topics (those starting with ``prefix``); never fail a
    teardown over it."""
    try:
        deleted = delete_topics(settings, prefix)
    except PaystreamError as exc:
        log.warning("topics of %s left behind: %s", prefix, exc)
    else:
        log.info("deleted %d topics of %s", len(deleted), prefix)

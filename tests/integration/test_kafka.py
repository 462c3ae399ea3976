"""confluent-kafka against the real broker: a produce/consume round trip."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.bootstrap import kafka_consumer_config, kafka_producer_config
from services.metrics.lag import GroupOffsets
from services.settings import Settings
from tests.support.kafka import consume, fresh_topics

pytestmark = pytest.mark.integration


def test_produce_and_consume_keeps_key_order_per_partition(stack_healthy: Settings) -> None:
    (topic,) = fresh_topics(stack_healthy, "test.roundtrip")
    producer = Producer(kafka_producer_config(stack_healthy))
    sent = [(f"payer-{i % 5}".encode(), f"event-{i}".encode()) for i in range(50)]
    for key, value in sent:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    received = [
        (m.key(), m.value(), m.partition())
        for m in consume(stack_healthy, topic, len(sent), timeout_s=60)
    ]

    assert sorted((k or b"", v or b"") for k, v, _ in received) == sorted(sent)
    # One key, one partition, and the producer's order kept within it.
    for key in {k for k, _ in sent}:
        assert len({p for k, _, p in received if k == key}) == 1
        assert [v for k, v, _ in received if k == key] == [v for k, v in sent if k == key]


def test_group_offsets_are_the_next_and_end_offsets(stack_healthy: Settings) -> None:
    """What the partition watchdog reads: a committed partition's offset (the
    first offset of one the group never committed) and the end offsets."""
    (topic,) = fresh_topics(stack_healthy, "test.committed")
    producer = Producer(kafka_producer_config(stack_healthy))
    for i in range(6):
        producer.produce(topic, value=f"r-{i}".encode(), partition=0)
    producer.produce(topic, value=b"other", partition=1)
    assert producer.flush(30) == 0
    group = f"test-committed-{uuid.uuid4().hex[:8]}"
    config = kafka_consumer_config(stack_healthy, group)
    committer = Consumer(config)
    try:
        committer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    finally:
        committer.close()
    offsets = GroupOffsets(config, 10.0)
    try:
        read = offsets.read([(topic, 0), (topic, 1)])
    finally:
        offsets.close()
    assert read == {(topic, 0): (4, 6), (topic, 1): (0, 1)}

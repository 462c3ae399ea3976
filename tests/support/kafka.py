"""Kafka helpers for tests: fresh topics and bounded consumption."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from services.bootstrap import kafka_consumer_config
from services.settings import Settings


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

"""Producers as outsiders write them, and the two partitioners they may use.

The engine's tables assume that a payer's records all land on the partition
Kafka's Java clients and Faust (aiokafka) pick for the payer's key: murmur2.
confluent-kafka, the client the design names, defaults to librdkafka's
``consistent_random`` partitioner (CRC32 of the key) instead; a producer that
keeps that default is the "bad producer" of these scenarios.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from confluent_kafka import Producer

from devtools.harness.load import encode
from schemas.partitioning import partition_for
from schemas.payments import PaymentRequested
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

FLUSH_TIMEOUT_S = 60.0


def murmur2_partition(key: str, partitions: int) -> int:
    """Where Faust, Kafka's Java clients and ``murmur2_random`` put ``key``."""
    return partition_for(key, partitions)


def crc32_partition(key: str, partitions: int) -> int:
    """Where librdkafka's default partitioner (``consistent_random``) puts ``key``."""
    return zlib.crc32(key.encode()) % partitions


def publish(settings: Settings, requests: Iterable[PaymentRequested], documented: bool) -> None:
    """Send these requests keyed by payer, with the documented producer
    (``documented``: murmur2) or with librdkafka's default partitioner."""
    config = kafka_producer_config(settings)
    if not documented:
        config = {k: v for k, v in config.items() if k != "partitioner"}
    producer = Producer(config)
    topic = settings.topic(PAYMENTS_REQUESTED)
    for req in requests:
        key, value = encode(req)
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    left = producer.flush(FLUSH_TIMEOUT_S)
    if left:
        raise BrokerUnavailable(f"{left} requests to {topic} not delivered")

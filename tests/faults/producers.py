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
from schemas.payments import PaymentRequested
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

FLUSH_TIMEOUT_S = 60.0
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    h = (0x9747B28C ^ len(data)) & _MASK
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def murmur2_partition(key: str, partitions: int) -> int:
    """Where Faust, Kafka's Java clients and ``murmur2_random`` put ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


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

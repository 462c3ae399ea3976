"""Where a consumer group stands on Kafka: its committed offsets, read from the
group's coordinator (the group is not joined). A partition the group never
committed counts from its first offset (the engine's consumers start at the
earliest record)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.errors import InfrastructureError

Partition = tuple[str, int]


class KafkaUnavailable(InfrastructureError):
    """Kafka did not answer in time."""


def committed_offsets(
    config: Mapping[str, object], partitions: Sequence[Partition], timeout_s: float
) -> dict[Partition, int]:
    """The next offset the group will read on each partition (``config``: a
    consumer configuration with the group's ``group.id``)."""
    consumer = Consumer(dict(config))
    try:
        asked = [TopicPartition(topic, partition) for topic, partition in partitions]
        out: dict[Partition, int] = {}
        for tp in consumer.committed(asked, timeout=timeout_s):
            if tp.error is not None:
                raise KafkaUnavailable(
                    f"committed offset of {tp.topic}[{tp.partition}]: {tp.error}"
                )
            offset = tp.offset
            if offset < 0:  # nothing committed yet: from the first record kept
                offset = consumer.get_watermark_offsets(tp, timeout=timeout_s)[0]
            out[(tp.topic, tp.partition)] = offset
        return out
    except KafkaException as exc:
        raise KafkaUnavailable(f"committed offsets not read: {exc}") from exc
    finally:
        consumer.close()

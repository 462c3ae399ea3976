"""Where a consumer group stands on Kafka: per partition its committed offset
(read from the group's coordinator; the group is not joined) and the end
offset. A partition the group never committed counts from its first offset
(the engine's consumers start at the earliest record).

One confluent-kafka client, kept for the life of the reader: it is independent
of the consumer it watches (a wedged Faust consumer thread does not wedge it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from services.errors import InfrastructureError

Partition = tuple[str, int]


class KafkaUnavailable(InfrastructureError):
    """Kafka did not answer in time."""


class GroupOffsets:
    """Committed and end offsets of a group's partitions (blocking calls)."""

    def __init__(self, config: Mapping[str, object], timeout_s: float) -> None:
        self.config = dict(config)  # a consumer configuration with the group's group.id
        self.timeout_s = timeout_s
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def read(self, partitions: Sequence[Partition]) -> dict[Partition, tuple[int, int]]:
        """Per partition: (the next offset the group will read, the end offset)."""
        with self._lock:
            if self._consumer is None:
                self._consumer = Consumer(self.config)
            consumer, out = self._consumer, {}
            try:
                asked = [TopicPartition(topic, partition) for topic, partition in partitions]
                for tp in consumer.committed(asked, timeout=self.timeout_s):
                    if tp.error is not None:
                        where = f"{tp.topic}[{tp.partition}]"
                        raise KafkaUnavailable(f"committed offset of {where}: {tp.error}")
                    low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout_s)
                    start = tp.offset if tp.offset >= 0 else low  # nothing committed yet
                    out[(tp.topic, tp.partition)] = (start, high)
            except KafkaException as exc:
                raise KafkaUnavailable(f"offsets not read: {exc}") from exc
            return out

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

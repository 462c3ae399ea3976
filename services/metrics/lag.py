"""Where a consumer group stands on Kafka: per partition its committed offset
(read from the group's coordinator; the group is not joined), the first and
the end offset; and when the first record it has not read was written. A
partition the group never committed counts from its first offset (the
engine's consumers start at the earliest record).

One confluent-kafka client, kept for the life of the reader: it is independent
of the consumer it watches (a wedged Faust consumer thread does not wedge it).
The records' times are read by a consumer of its own that never commits.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, TopicPartition

from services.errors import InfrastructureError

Partition = tuple[str, int]
FETCH_BYTES = 65536  # per fetch of the records whose times are read


class KafkaUnavailable(InfrastructureError):
    """Kafka did not answer in time."""


@dataclass(frozen=True)
class Position:
    """A group's place in one partition."""

    committed: int | None  # None: the group never committed here
    low: int  # the first offset still in the log
    end: int  # the offset the next record written gets

    @property
    def next_read(self) -> int:
        return self.low if self.committed is None else self.committed

    @property
    def lag(self) -> int:
        """Records not yet read (Kafka's LAG: end offset - committed offset)."""
        return max(0, self.end - self.next_read)

    @property
    def first_unread(self) -> int:
        """The offset of the first record not yet read that is still in the log."""
        return max(self.next_read, self.low)


class GroupOffsets:
    """Committed and end offsets of a group's partitions (blocking calls)."""

    def __init__(self, config: Mapping[str, object], timeout_s: float) -> None:
        self.config = dict(config)  # a consumer configuration with the group's group.id
        self.timeout_s = timeout_s
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def read(self, partitions: Sequence[Partition]) -> dict[Partition, tuple[int, int]]:
        """Per partition: (the next offset the group will read, the end offset)."""
        return {k: (p.next_read, p.end) for k, p in self.positions(partitions).items()}

    def positions(self, partitions: Sequence[Partition]) -> dict[Partition, Position]:
        """Per partition: the group's committed offset, the first and end offsets."""
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
                    committed = tp.offset if tp.offset >= 0 else None
                    out[(tp.topic, tp.partition)] = Position(committed, low, high)
            except KafkaException as exc:
                raise KafkaUnavailable(f"offsets not read: {exc}") from exc
            return out

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


def written_at(
    config: Mapping[str, object], offsets: Mapping[Partition, int], timeout_s: float
) -> dict[Partition, float]:
    """When the record at each of these offsets was written (Unix seconds, its
    timestamp); a partition whose record was not read within ``timeout_s``, or
    has no timestamp, is absent. Read by a consumer of its own group that never
    commits, so the watched group is untouched."""
    own = {
        **config,
        "group.id": f"paystream-lag-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        # One record per partition is wanted, not the backlog behind it:
        # librdkafka prefetches up to 64 MB by default, parsed on the machine's
        # cores exactly when the backlog is large (Kafka still sends a first
        # batch larger than these).
        "fetch.max.bytes": FETCH_BYTES,
        "message.max.bytes": FETCH_BYTES,
        "max.partition.fetch.bytes": FETCH_BYTES,
        "queued.max.messages.kbytes": FETCH_BYTES // 1024,
        "queued.min.messages": 1,
    }
    consumer = Consumer(own)
    out: dict[Partition, float] = {}
    try:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        deadline = time.monotonic() + timeout_s
        while len(out) < len(offsets) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            where = (str(message.topic()), int(message.partition() or 0))
            kind, ms = message.timestamp()
            if where in offsets and where not in out and kind != TIMESTAMP_NOT_AVAILABLE:
                out[where] = ms / 1000
                consumer.pause([TopicPartition(*where)])
    except KafkaException as exc:
        raise KafkaUnavailable(f"records not read: {exc}") from exc
    finally:
        consumer.close()
    return out

"""Consumer lag, as ``paystream lag`` shows it: for each of the engine's
consumer groups (the stream worker's, the ledger sink's) or any group named,
per topic and partition the committed offset, the end offset, the lag in
records (end - committed, as Kafka's consumer-groups tool counts it) and in
seconds (how long ago the first record the group has not read was written);
and the totals per group (records summed, seconds the largest).

A group's partitions are the ones it committed offsets for, and for the
engine's groups every partition of the topics they consume (one never
committed counts from its first record).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicCollection,
)

from schemas.topics import WORKER_CONSUMES
from services.bootstrap import kafka_admin, kafka_consumer_config
from services.errors import InfrastructureError
from services.metrics.catalogue import SinkMetrics
from services.metrics.lag import GroupOffsets, KafkaUnavailable, Partition, Position, written_at
from services.settings import Settings
from streams.sink import DECODERS
from streams.sink import group_id as sink_group

log = logging.getLogger("paystream.lag")


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_seconds: float


@dataclass(frozen=True)
class GroupLag:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def lag_seconds(self) -> float:
        return max((p.lag_seconds for p in self.partitions), default=0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "lag": self.lag,
            "lag_seconds": round(self.lag_seconds, 3),
            "partitions": [
                vars(p) | {"lag_seconds": round(p.lag_seconds, 3)} for p in self.partitions
            ],
        }


def engine_groups(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The engine's consumer groups and the topics each consumes."""
    return {
        settings.app_id: tuple(settings.topic(t) for t in WORKER_CONSUMES),
        sink_group(settings): tuple(settings.topic(t) for t in DECODERS),
    }


def measure(settings: Settings, groups: Sequence[str] | None = None) -> list[GroupLag]:
    """The lag of these groups (default: the engine's), measured once."""
    meter = LagMeter(settings)
    try:
        return meter.measure(groups)
    finally:
        meter.close()


class LagMeter:
    """Measures lag again and again on the same Kafka clients."""

    def __init__(self, settings: Settings, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.now = now
        self.known = engine_groups(settings)
        self.admin = kafka_admin(settings)
        self.readers: dict[str, GroupOffsets] = {}

    def measure(self, groups: Sequence[str] | None = None) -> list[GroupLag]:
        return [self._group(g) for g in (groups or list(self.known))]

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()

    def _group(self, group: str) -> GroupLag:
        timeout_s = self.settings.connect_timeout_s
        committed = self._committed_partitions(group)
        partitions = sorted(set(committed) | set(self._partitions(self.known.get(group, ()))))
        config = kafka_consumer_config(self.settings, group)
        reader = self.readers.setdefault(group, GroupOffsets(config, timeout_s))
        positions = reader.positions(partitions) if partitions else {}
        behind = {k: p.first_unread for k, p in positions.items() if p.lag > 0}
        written = written_at(config, behind, timeout_s) if behind else {}
        at = self.now()
        rows = tuple(_row(k, p, written.get(k), at) for k, p in sorted(positions.items()))
        return GroupLag(group, rows)

    def _committed_partitions(self, group: str) -> list[Partition]:
        timeout_s = self.settings.connect_timeout_s
        ask = [ConsumerGroupTopicPartitions(group)]
        try:
            future = self.admin.list_consumer_group_offsets(ask, request_timeout=timeout_s)
            result = future[group].result(timeout=timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailable(f"offsets of group {group} not read: {exc}") from exc
        return [(tp.topic, tp.partition) for tp in result.topic_partitions or [] if tp.offset >= 0]

    def _partitions(self, topics: Sequence[str]) -> list[Partition]:
        """The partitions of those of ``topics`` that exist, described by
        name: the whole cluster's metadata (thousands of partitions on a shared
        cluster) took the gateway's event loop 70 ms to parse every refresh,
        and a metadata request for a topic would create it on a broker that
        creates topics on demand."""
        if not topics:
            return []
        timeout_s = self.settings.connect_timeout_s
        found: list[Partition] = []
        try:
            described = self.admin.describe_topics(
                TopicCollection(list(topics)), request_timeout=timeout_s
            )
            for topic, future in described.items():
                try:
                    found += [(topic, p.id) for p in future.result(timeout=timeout_s).partitions]
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise
        except (KafkaException, TimeoutError) as exc:
            raise KafkaUnavailable(f"topics not described: {exc}") from exc
        return found


def _row(where: Partition, p: Position, written: float | None, at: float) -> PartitionLag:
    seconds = 0.0 if p.lag == 0 or written is None else max(0.0, at - written)
    return PartitionLag(where[0], where[1], p.committed, p.end, p.lag, seconds)


class LagExporter:
    """Sets the consumer lag gauges of the engine's groups every ``interval_s``,
    per group and topic (records summed, seconds the largest), in a thread of
    its own: a Kafka that does not answer never blocks the process serving
    them. A failed measurement is counted and logged; the gauges keep their
    last values."""

    def __init__(self, settings: Settings, metrics: SinkMetrics) -> None:
        self.meter = LagMeter(settings)
        self.metrics = metrics
        self.interval_s = settings.lag_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lag-exporter", daemon=True)

    def start(self) -> LagExporter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.meter.close()

    def once(self) -> None:
        try:
            measured = self.meter.measure()
        except (InfrastructureError, KafkaException) as exc:
            self.metrics.lag_errors.inc()
            log.warning("consumer lag not measured: %s", exc)
            return
        for g in measured:
            topics: dict[str, tuple[int, float]] = {}
            for p in g.partitions:
                records, seconds = topics.get(p.topic, (0, 0.0))
                topics[p.topic] = (records + p.lag, max(seconds, p.lag_seconds))
            for topic, (records, seconds) in topics.items():
                self.metrics.lag_records.labels(g.group, topic).set(records)
                self.metrics.lag_seconds.labels(g.group, topic).set(seconds)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.once()
            self._stop.wait(self.interval_s)

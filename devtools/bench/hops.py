"""One hop of the raw pass-through baseline: consume a topic in batches, produce
every record unchanged to the next topic (``paystream bench hop``, one OS process).

Client settings are the project's (``kafka_producer_config`` and
``kafka_consumer_config``: idempotent producer, acks from all replicas, lz4,
manual commits) with these additions, chosen for throughput with a bounded
latency per hop:

- producer ``linger.ms=5`` (as the project's) and ``batch.size=1 MiB``: a hop
  sends what one ``consume`` call returned as a few large produce requests;
- producer ``queue.buffering.max.messages=100000``: a bounded local buffer; when
  it is full ``produce`` raises ``BufferError`` and the hop polls for delivery
  reports until there is room again (it never waits per message);
- producer ``delivery.report.only.error``: only failed deliveries call back into
  Python (and raise ``BrokerUnavailable``), not every record;
- consumer ``fetch.wait.max.ms=50``: the broker answers an empty fetch within
  50 ms, so a hop that just got its first records does not idle for the
  default 500 ms; ``fetch.min.bytes`` stays 1 for the same reason;
- consumer ``queued.min.messages=100000``: librdkafka prefetches up to that many
  records per partition while Python works on the previous batch.

Offsets are committed asynchronously once per ``commit_interval_s`` (positions
of what was consumed, not of what was delivered: a baseline, not exactly-once),
and once synchronously on SIGTERM after the producer has flushed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from devtools.harness.process import CliProcess
from services.bootstrap import kafka_consumer_config, kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

PRODUCER_EXTRA: dict[str, object] = {
    "linger.ms": 5,
    "batch.size": 1 << 20,
    "queue.buffering.max.messages": 100_000,
    "delivery.report.only.error": True,
}
CONSUMER_EXTRA: dict[str, object] = {
    "fetch.wait.max.ms": 50,
    "queued.min.messages": 100_000,
}


@dataclass(frozen=True)
class HopPlan:
    source: str
    sink: str
    group: str
    batch_max: int = 1_000  # records per consume() call
    poll_timeout_s: float = 0.1
    commit_interval_s: float = 1.0
    flush_timeout_s: float = 30.0


class _Stop:
    """Set by SIGTERM/SIGINT; the loop finishes its batch and shuts down cleanly."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def produce_all(
    producer: Producer, topic: str, records: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    """Produce without waiting per record; on a full local queue, serve delivery
    reports until there is room (never drops a record)."""
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.poll(0)


def _on_delivery(err: KafkaError | None, _msg: object) -> None:
    if err is not None:
        raise BrokerUnavailable(f"delivery failed: {err}")


def bench_producer(settings: Settings) -> Producer:
    """The project's producer with the batching options above; a failed delivery
    raises ``BrokerUnavailable`` from the next ``poll``/``flush``."""
    return Producer(
        {**kafka_producer_config(settings), **PRODUCER_EXTRA, "on_delivery": _on_delivery}
    )


def bench_consumer(settings: Settings, group: str) -> Consumer:
    """The project's consumer (manual commits, from the earliest offset) with the
    fetch options above."""
    return Consumer({**kafka_consumer_config(settings, group), **CONSUMER_EXTRA})


def run_hop(settings: Settings, plan: HopPlan) -> int:
    """Pass records from ``plan.source`` to ``plan.sink`` until SIGTERM; returns
    how many were passed."""
    stop = _Stop()
    producer = bench_producer(settings)
    consumer = bench_consumer(settings, plan.group)
    consumer.subscribe([plan.source])
    passed = 0
    next_commit = time.monotonic() + plan.commit_interval_s
    try:
        while not stop.requested:
            batch = consumer.consume(num_messages=plan.batch_max, timeout=plan.poll_timeout_s)
            records: list[tuple[bytes | None, bytes | None]] = []
            for msg in batch:
                if msg.error() is not None:
                    raise BrokerUnavailable(f"consuming {plan.source}: {msg.error()}")
                records.append((msg.key(), msg.value()))
            produce_all(producer, plan.sink, records)
            passed += len(records)
            if records and time.monotonic() >= next_commit:
                consumer.commit(asynchronous=True)
                next_commit = time.monotonic() + plan.commit_interval_s
        producer.flush(plan.flush_timeout_s)
        _commit_final(consumer)
    finally:
        consumer.close()
    return passed


def _commit_final(consumer: Consumer) -> None:
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise BrokerUnavailable(f"final commit: {exc}") from exc


class HopProcess(CliProcess):
    """``paystream bench hop``: one hop as a child process."""

    def __init__(self, settings: Settings, log: Path, source: str, sink: str, group: str) -> None:
        super().__init__(settings, log, child_env(settings))
        self.source, self.sink, self.group = source, sink, group

    def command(self) -> tuple[str, ...]:
        return ("bench", "hop", "--source", self.source, "--sink", self.sink, "--group", self.group)


def child_env(settings: Settings) -> dict[str, str]:
    """What a benchmark child needs of these Settings (which may differ from the
    environment's, e.g. in tests)."""
    return {
        "PAYSTREAM_HOST": settings.host,
        "PAYSTREAM_KAFKA_PORT": str(settings.kafka_port),
        "PAYSTREAM_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "PAYSTREAM_CONNECT_TIMEOUT_S": str(settings.connect_timeout_s),
        "PAYSTREAM_STATE_DIR": str(settings.state_dir),
        "PAYSTREAM_FAUST_STREAM_BUFFER_MAXSIZE": str(settings.faust_stream_buffer_maxsize),
        "PAYSTREAM_FAUST_PRODUCER_LINGER_MS": str(settings.faust_producer_linger_ms),
        "PAYSTREAM_FAUST_COMMIT_EVERY": str(settings.faust_commit_every),
        "PAYSTREAM_FAUST_FETCH_MIN_BYTES": str(settings.faust_fetch_min_bytes),
        "PAYSTREAM_FAUST_FETCH_MAX_WAIT_MS": str(settings.faust_fetch_max_wait_ms),
        "PAYSTREAM_FAUST_PRODUCER_MAX_BATCH_SIZE": str(settings.faust_producer_max_batch_size),
        "PAYSTREAM_FAUST_UVLOOP": str(settings.faust_uvloop).lower(),
    }

"""``paystream lag`` against the real broker, checked against Kafka's own
consumer-groups tool (``ConsumerGroupCommand``, run from the stack's broker
jars) on a group that is not consuming."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from devtools.stack.base import StatePaths
from devtools.stack.kafka import KafkaService
from paystream.cli.lag import lag
from schemas.topics import WORKER_CONSUMES
from services.bootstrap import kafka_consumer_config, kafka_producer_config
from services.metrics.catalogue import SinkMetrics
from services.settings import Settings
from streams.ops.lag import LagExporter, engine_groups, measure
from tests.support.kafka import fresh_topics

pytestmark = pytest.mark.integration

TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
AGO_S = 120  # the records' timestamps: written this long ago


def kafkas_view(settings: Settings, group: str) -> dict[tuple[str, int], tuple[int, int, int]]:
    """Per partition: (current offset, log end offset, lag) as Kafka's tool prints them."""
    command = KafkaService(settings, StatePaths(settings)).tool(
        TOOL, "--bootstrap-server", settings.kafka_bootstrap, "--describe", "--group", group
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{TOOL} exited {done.returncode}: {done.stderr[-2000:]}"
    out = done.stdout
    rows: dict[tuple[str, int], tuple[int, int, int]] = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[0] == group:
            rows[(cells[1], int(cells[2]))] = (int(cells[3]), int(cells[4]), int(cells[5]))
    return rows


def test_lag_agrees_with_kafkas_consumer_groups_tool(stack_healthy: Settings) -> None:
    settings = stack_healthy
    (topic,) = fresh_topics(settings, "test.lag", partitions=3)
    producer = Producer(kafka_producer_config(settings))
    written_ms = int((time.time() - AGO_S) * 1000)
    for partition, count in ((0, 10), (1, 4), (2, 6)):
        for i in range(count):
            producer.produce(topic, value=b"%d" % i, partition=partition, timestamp=written_ms)
    assert producer.flush(30) == 0
    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(kafka_consumer_config(settings, group))
    done = [TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 4), TopicPartition(topic, 2, 0)]
    consumer.commit(offsets=done, asynchronous=False)
    consumer.close()

    (measured,) = measure(settings, [group])
    ours = {(p.topic, p.partition): (p.committed, p.end, p.lag) for p in measured.partitions}
    assert ours == kafkas_view(settings, group)
    assert ours == {(topic, 0): (7, 10, 3), (topic, 1): (4, 4, 0), (topic, 2): (0, 6, 6)}
    seconds = {p.partition: p.lag_seconds for p in measured.partitions}
    assert seconds[1] == 0.0
    assert AGO_S - 5 < seconds[0] < AGO_S + 60 and AGO_S - 5 < seconds[2] < AGO_S + 60
    assert (measured.lag, measured.lag_seconds) == (9, max(seconds.values()))

    shown = CliRunner().invoke(lag, ["--json", "--group", group], obj=settings)
    assert shown.exit_code == 0, shown.output
    (as_json,) = json.loads(shown.output)["groups"]
    assert (as_json["group"], as_json["lag"]) == (group, 9)


def test_the_engines_groups_count_every_partition_of_their_topics(stack_healthy: Settings) -> None:
    """A group that never committed (the worker before its first run) counts
    every record of its topics as not read, in every partition; the sink's
    exporter sets the gauges per group and topic."""
    run = uuid.uuid4().hex[:8]
    settings = stack_healthy.model_copy(
        update={"app_id": f"lagtest-{run}", "topic_prefix": f"lagtest-{run}-"}
    )
    groups = engine_groups(settings)
    topics = sorted({t for names in groups.values() for t in names})
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, num_partitions=2) for t in topics]).values():
        future.result(timeout=30)
    producer = Producer(kafka_producer_config(settings))
    first = settings.topic(WORKER_CONSUMES[0])
    producer.produce(first, value=b"x", partition=1)
    assert producer.flush(30) == 0
    metrics = SinkMetrics.create()
    exporter = LagExporter(settings, metrics)
    try:
        measured = measure(settings)
        exporter.once()
    finally:
        exporter.stop()
        admin.delete_topics(topics)
    assert [g.group for g in measured] == list(groups)
    worker = measured[0]
    assert {(p.topic, p.partition) for p in worker.partitions} == {
        (t, n) for t in groups[settings.app_id] for n in (0, 1)
    }
    assert all(p.committed is None for g in measured for p in g.partitions)
    assert [(p.topic, p.partition) for p in worker.partitions if p.lag] == [(first, 1)]
    assert worker.lag == 1 and worker.lag_seconds >= 0.0
    gauge = metrics.registry.get_sample_value
    assert gauge("paystream_consumer_lag_records", {"group": settings.app_id, "topic": first}) == 1
    other = settings.topic(WORKER_CONSUMES[1])
    assert gauge("paystream_consumer_lag_records", {"group": settings.app_id, "topic": other}) == 0


def test_measuring_topics_that_do_not_exist_creates_none(stack_healthy: Settings) -> None:
    """The local broker creates a topic when a client asks for its metadata;
    the lag meter describes the engine's topics by name and so never does."""
    run = uuid.uuid4().hex[:8]
    settings = stack_healthy.model_copy(
        update={"app_id": f"lagnone-{run}", "topic_prefix": f"lagnone-{run}-"}
    )
    measured = measure(settings)
    assert measured and all(not g.partitions for g in measured)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = admin.list_topics(timeout=30).topics
    assert not [t for t in names if t.startswith(f"lagnone-{run}-")]

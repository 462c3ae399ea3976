"""faust-streaming (aiokafka underneath) works with this broker's Kafka version:
a worker process round-trips records through an agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer

from services.bootstrap import kafka_producer_config
from services.settings import PROJECT_ROOT, Settings
from streams.app import faust_app
from streams.writes import DurableProducer
from tests.support.kafka import consume, fresh_topics

pytestmark = pytest.mark.integration

ECHO_APP = "tests.integration.faust_echo_app"


@dataclass
class EchoWorker:
    source: str
    sink: str
    log: Path
    process: subprocess.Popen[bytes]

    def assert_alive(self) -> None:
        assert self.process.poll() is None, "worker exited:\n" + self.log.read_text()


@pytest.fixture
def echo_worker(stack_healthy: Settings, tmp_path: Path) -> Iterator[EchoWorker]:
    source, sink = fresh_topics(stack_healthy, "test.faust.in", "test.faust.out")
    env = {
        **os.environ,
        "ECHO_APP_ID": f"test-echo-{uuid.uuid4().hex[:8]}",
        "ECHO_BROKER": stack_healthy.kafka_bootstrap,
        "ECHO_DATADIR": str(tmp_path / "faust"),
        "ECHO_SOURCE": source,
        "ECHO_SINK": sink,
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", ECHO_APP, "worker", "--without-web", "-l", "warn"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield EchoWorker(source, sink, log, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_faust_agent_round_trips_records(stack_healthy: Settings, echo_worker: EchoWorker) -> None:
    producer = Producer(kafka_producer_config(stack_healthy))
    values = [f"payment-{i}".encode() for i in range(20)]
    for value in values:
        producer.produce(echo_worker.source, key=b"payer-1", value=value)
    assert producer.flush(30) == 0

    # The timeout includes the worker's start and its first rebalance.
    received = consume(
        stack_healthy,
        echo_worker.sink,
        len(values),
        timeout_s=120,
        while_ok=echo_worker.assert_alive,
    )

    # One key, one partition: the agent keeps the order.
    assert [m.value() for m in received] == [b"echo:" + v for v in values], (
        echo_worker.log.read_text()
    )


async def test_the_workers_producer_tracks_each_write_until_kafka_has_it(
    stack_healthy: Settings, tmp_path: Path
) -> None:
    """The worker's producer (``streams/writes.py``) against the real broker:
    a table-style write (``send_soon``, through Faust's buffer) and a topic
    record (``send``) are pending until Kafka acknowledges them; then a commit
    may pass them, and they are in the topic."""
    (name,) = fresh_topics(stack_healthy, "test.faust.writes")
    app = faust_app(stack_healthy, f"test-writes-{uuid.uuid4().hex[:8]}", datadir=str(tmp_path))
    topic = app.topic(name, key_serializer="raw", value_serializer="raw")
    producer = app.producer
    assert isinstance(producer, DurableProducer)
    await producer.start()
    try:
        topic.send_soon(key=b"payer-1", value=b"changelog")
        await topic.send(key=b"payer-1", value=b"record")
        made = list(producer.writes.recent)
        assert len(producer.writes.unwritten(made)) >= 2  # nothing is acknowledged yet
        assert await producer.writes.settled([], 30.0)
        assert producer.writes.unwritten(made) == [] and not producer.writes.lost
    finally:
        await producer.stop()
    received = consume(stack_healthy, name, 2, timeout_s=30)
    assert sorted(m.value() or b"" for m in received) == [b"changelog", b"record"]

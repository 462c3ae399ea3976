"""The worker's table store (``streams/preload.py``) against the real broker:
a worker that starts on a table's existing changelog reads it in bulk and
serves what Faust's own recovery would have given it (the last write of each
key; a deleted key is gone), and a restarted worker serves what it wrote
itself before the restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.cimpl import NewTopic

from services.bootstrap import kafka_admin, kafka_producer_config
from services.settings import PROJECT_ROOT, Settings
from tests.support.kafka import fresh_topics, read_all

pytestmark = pytest.mark.integration

APP = "tests.integration.faust_table_app"
PARTITIONS = 4


@dataclass
class TableWorker:
    settings: Settings
    app_id: str
    source: str
    sink: str
    tmp: Path
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def log(self) -> Path:
        return self.tmp / f"worker-{self.runs}.log"

    def start(self) -> None:
        self.runs += 1
        env = {
            **os.environ,
            "TABLE_APP_ID": self.app_id,
            "TABLE_BROKER": self.settings.kafka_bootstrap,
            "TABLE_DATADIR": str(self.tmp / "faust"),
            "TABLE_SOURCE": self.source,
            "TABLE_SINK": self.sink,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", APP, "worker", "--without-web", "-l", "info"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def assert_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()


@pytest.fixture
def worker(stack_healthy: Settings, tmp_path: Path) -> Iterator[TableWorker]:
    source, sink = fresh_topics(stack_healthy, "test.table.in", "test.table.out")
    app_id = f"test-table-{uuid.uuid4().hex[:8]}"
    admin = kafka_admin(stack_healthy)
    changelog = NewTopic(
        f"{app_id}-t-changelog", num_partitions=PARTITIONS, config={"cleanup.policy": "compact"}
    )
    for future in admin.create_topics([changelog]).values():
        future.result(timeout=30)
    running = TableWorker(stack_healthy, app_id, source, sink, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _home(key: str) -> int:
    return zlib.crc32(key.encode()) % PARTITIONS


def _ask(w: TableWorker, producer: Producer, commands: list[str]) -> dict[str, str]:
    """Send commands (each keyed by its table key); the answer to each ``get``
    (the last one: a restarted worker may answer earlier gets again)."""
    seen = {(m.partition(), m.offset()) for m in read_all(w.settings, w.sink)}
    asked = {c.split(" ")[1] for c in commands if c.startswith("get ")}
    for command in commands:
        producer.produce(w.source, key=command.split(" ")[1].encode(), value=command.encode())
    assert producer.flush(30) == 0
    deadline = time.monotonic() + 120  # includes a worker's start and first rebalance
    while time.monotonic() < deadline:
        w.assert_alive()
        new = [m for m in read_all(w.settings, w.sink) if (m.partition(), m.offset()) not in seen]
        answers = dict((m.value() or b"").decode().split("=", 1) for m in new)
        if asked <= answers.keys():
            return {name: answers[name] for name in asked}
        time.sleep(0.5)
    raise AssertionError(f"no answer to {sorted(asked)}:\n{w.log.read_text()}")


def test_a_worker_serves_its_tables_changelog_read_in_bulk(worker: TableWorker) -> None:
    producer = Producer(kafka_producer_config(worker.settings))
    changelog = f"{worker.app_id}-t-changelog"
    expected: dict[str, str] = {}
    for i in range(3_000):  # 300 keys written 10 times each; the last write wins
        key = f"k{i % 300}"
        value = f"v{i}"
        producer.produce(
            changelog, key=json.dumps(key).encode(), value=value.encode(), partition=_home(key)
        )
        expected[key] = value
    for i in range(10):  # deleted: Faust writes a None value
        key = f"k{i}"
        producer.produce(changelog, key=json.dumps(key).encode(), value=None, partition=_home(key))
        expected[key] = "-"
    assert producer.flush(30) == 0
    worker.start()
    probe = [f"k{i}" for i in range(0, 300, 7)] + ["never-written"]
    expected["never-written"] = "-"
    answers = _ask(worker, producer, [f"get {k}" for k in probe])
    assert answers == {k: expected[k] for k in probe}
    assert "3010 records of 4 partitions read in bulk" in worker.log.read_text()

    # What the worker writes itself (through Faust's changelog) is served
    # after a restart, over the history.
    assert _ask(worker, producer, ["set k20 mine", "set k0 back", "get k20"]) == {"k20": "mine"}
    worker.stop()
    worker.start()
    answers = _ask(worker, producer, ["get k20", "get k0", "get k21"])
    assert answers == {"k20": "mine", "k0": "back", "k21": expected["k21"]}
    assert "3012 records of 4 partitions read in bulk" in worker.log.read_text()

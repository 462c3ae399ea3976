"""Throughput baselines for the benchmark harness, on the same broker and with
records of a payment request's size.

- ``run_raw_4hop``: T0 -> T1 -> T2 -> T3 -> T4 through four confluent-kafka hop
  processes (``devtools/bench/hops.py``): what Python and Kafka do with no
  framework in the way.
- ``run_faust_noop``: the same four hops as no-op agents of one Faust worker
  (``devtools/bench/noop_app.py``): Faust's own per-event cost.

Both use the same driver and measurement. A run creates fresh topics
(``bench-<run>-<name>-t0..t4``, ``settings.kafka_partitions`` partitions),
starts its processes, sends ``WARMUP_RECORDS`` and waits for all of them on T4
(so every hop has its partitions and has fetched once), then produces the timed
records to T0 as fast as it can while a consumer thread counts arrivals on T4.
The result is ``records / (last timed arrival on T4 - first timed produce)``;
the hops' CPU and peak RSS are sampled over that interval. ``repeated`` runs a
baseline several times: its median rate and the spread are what the bench
compares the pipeline with. (A rate between two percentiles of the arrivals
was tried as a "steady" rate and was noisier still: the no-op Faust works
through a backlog stage by stage, so its arrivals on T4 come in bursts.) The processes are
stopped (SIGTERM, then SIGKILL) and every topic with the run's prefix (Faust's
internal ones too) is deleted, also when the run fails.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Producer, TopicPartition
from confluent_kafka.cimpl import NewTopic

from devtools.bench.hops import HopProcess, bench_consumer, bench_producer, produce_all
from devtools.bench.noop_app import NoopWorkerProcess
from devtools.bench.procstat import ProcessSampler
from devtools.harness.process import CliProcess
from devtools.stack.errors import StackError
from services.errors import BrokerUnavailable
from services.settings import Settings
from streams.ops.topics import create, delete_topics

HOPS = 4
WARMUP_RECORDS = 200
WARMUP_TIMEOUT_S = 120.0  # process start, group join and first fetch of every hop
STALL_TIMEOUT_S = 120.0  # no new arrival on T4 for this long: the pipeline is stuck
MIN_RATE_PER_S = 100.0  # the timed phase may take STALL_TIMEOUT_S + records / this
STOP_TIMEOUT_S = 30.0  # SIGTERM, then SIGKILL
FLUSH_TIMEOUT_S = 60.0
SEND_CHUNK = 5_000  # records built and produced between two progress reports
KEYS = 1_000  # distinct keys (payers), spread over every partition

_HEAD = b'{"bench":"%s","seq":'
_SEQ_AT = len(_HEAD % b"t")
_KIND_AT = _HEAD.index(b"%s")
_SEQ_DIGITS = 10

Progress = Callable[[int], None]


@dataclass(frozen=True)
class BaselineResult:
    name: str  # "raw_4hop" or "faust_noop"
    records: int
    seconds: float
    per_s: float
    processes: dict[str, dict[str, float]]  # from ProcessSampler.usage()
    topics: tuple[str, ...] = ()  # the run's topics, all deleted when it ended
    duplicates: int = 0  # timed records that arrived on T4 more than once


@dataclass(frozen=True)
class Repeated:
    """One baseline run several times: the median rate and its spread."""

    name: str
    runs: tuple[BaselineResult, ...]

    @property
    def median_per_s(self) -> float:
        return statistics.median(r.per_s for r in self.runs)

    @property
    def spread_per_s(self) -> tuple[float, float]:
        rates = [r.per_s for r in self.runs]
        return min(rates), max(rates)

    @property
    def processes(self) -> dict[str, dict[str, float]]:
        """The usage of the run closest to the median."""
        median = self.median_per_s
        return min(self.runs, key=lambda r: abs(r.per_s - median)).processes

    def summary(self) -> dict[str, Any]:
        low, high = self.spread_per_s
        return {
            "median_per_s": round(self.median_per_s, 1),
            "min_per_s": round(low, 1),
            "max_per_s": round(high, 1),
            "runs_per_s": [round(r.per_s, 1) for r in self.runs],
            "records": self.runs[0].records,
        }


def repeated(
    run: Callable[..., BaselineResult],
    settings: Settings,
    records: int,
    times: int,
    progress: Progress = lambda n: None,
) -> Repeated:
    """``run`` (``run_raw_4hop`` or ``run_faust_noop``) ``times`` times, one after another."""
    if times < 1:
        raise ValueError("times must be at least 1")
    runs = tuple(run(settings, records, progress=progress) for _ in range(times))
    return Repeated(runs[0].name, runs)


def make_record(kind: bytes, seq: int, size: int) -> tuple[bytes, bytes]:
    """(key, value): a JSON object of exactly ``size`` bytes carrying its kind
    (b"w" warm-up, b"t" timed) and sequence number at fixed offsets."""
    head = _HEAD % kind + b"%0*d" % (_SEQ_DIGITS, seq) + b',"pad":"'
    pad = size - len(head) - 2
    if pad < 0:
        raise ValueError(f"record_bytes must be at least {len(head) + 2}")
    return b"payer-%04d" % (seq % KEYS), head + b"x" * pad + b'"}'


class Arrivals(threading.Thread):
    """Counts the records arriving on a topic (every partition, from the start),
    and when the last new timed one arrived; duplicates are counted apart."""

    def __init__(self, settings: Settings, topic: str, timed: int) -> None:
        super().__init__(name="arrivals", daemon=True)
        self.settings, self.topic = settings, topic
        self.warm = self.timed = self.duplicates = 0
        self.last_s = 0.0
        self.error: str | None = None
        self._seen = bytearray(timed)
        self._halt = threading.Event()

    def run(self) -> None:
        consumer = bench_consumer(self.settings, f"{self.topic}-arrivals")
        partitions = range(self.settings.kafka_partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        try:
            while not self._halt.is_set() and self.error is None:
                self._count(consumer.consume(num_messages=10_000, timeout=0.05))
        except KafkaException as exc:
            self.error = str(exc)
        finally:
            consumer.close()

    def _count(self, batch: list[Any]) -> None:
        now = time.perf_counter()
        for msg in batch:
            if msg.error() is not None:
                self.error = str(msg.error())
                return
            value: bytes = msg.value()
            if value[_KIND_AT : _KIND_AT + 1] == b"w":
                self.warm += 1
                continue
            seq = int(value[_SEQ_AT : _SEQ_AT + _SEQ_DIGITS])
            if self._seen[seq]:
                self.duplicates += 1
                continue
            self._seen[seq] = 1
            self.timed += 1
            self.last_s = now

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def run_raw_4hop(
    settings: Settings,
    records: int,
    record_bytes: int = 300,
    progress: Progress = lambda n: None,
) -> BaselineResult:
    """Records/s through four confluent-kafka hop processes."""
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-{run}-"
    topics = [f"{prefix}raw-t{i}" for i in range(HOPS + 1)]
    processes: dict[str, CliProcess] = {
        f"hop{i + 1}": HopProcess(
            settings,
            settings.state_dir / "logs" / f"{prefix}raw-hop{i + 1}.log",
            topics[i],
            topics[i + 1],
            f"{prefix}raw-hop{i + 1}",
        )
        for i in range(HOPS)
    }
    return _run("raw_4hop", settings, prefix, topics, processes, records, record_bytes, progress)


def run_faust_noop(
    settings: Settings,
    records: int,
    record_bytes: int = 300,
    progress: Progress = lambda n: None,
) -> BaselineResult:
    """Records/s through four no-op agents of one Faust worker."""
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-{run}-"
    app_id = f"{prefix}faust"
    topics = [f"{app_id}-t{i}" for i in range(HOPS + 1)]
    datadir = settings.state_dir / "bench" / app_id
    worker = NoopWorkerProcess(
        settings, settings.state_dir / "logs" / f"{app_id}.log", app_id, topics, datadir
    )
    try:
        return _run(
            "faust_noop",
            settings,
            prefix,
            topics,
            {"worker": worker},
            records,
            record_bytes,
            progress,
        )
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def _run(
    name: str,
    settings: Settings,
    prefix: str,
    topics: list[str],
    processes: dict[str, CliProcess],
    records: int,
    record_bytes: int,
    progress: Progress,
) -> BaselineResult:
    if records < 1:
        raise ValueError("records must be at least 1")
    make_record(b"t", records, record_bytes)  # fails early on a too small size
    deleted: list[str] = []
    with ExitStack() as cleanup:
        cleanup.callback(lambda: deleted.extend(delete_topics(settings, prefix)))
        create(
            settings,
            [
                NewTopic(t, num_partitions=settings.kafka_partitions, replication_factor=1)
                for t in topics
            ],
        )
        for process in processes.values():
            cleanup.callback(process.stop, STOP_TIMEOUT_S)
            process.start()
        seconds, usage, duplicates = _measure(
            settings, topics, processes, records, record_bytes, progress
        )
    return BaselineResult(
        name, records, seconds, records / seconds, usage, tuple(sorted(deleted)), duplicates
    )


def _measure(
    settings: Settings,
    topics: list[str],
    processes: dict[str, CliProcess],
    records: int,
    record_bytes: int,
    progress: Progress,
) -> tuple[float, dict[str, dict[str, float]], int]:
    """Warm up, then time ``records`` from T0 to T4; (seconds, usage, duplicates)."""
    arrivals = Arrivals(settings, topics[-1], records)
    reporter = _Reporter(arrivals, progress)

    def alive() -> None:
        for label, process in processes.items():
            if process.process is not None and process.process.poll() is not None:
                raise StackError(
                    f"{label} exited ({process.process.returncode}); see {process.log}"
                )
        if arrivals.error is not None:
            raise BrokerUnavailable(f"counting arrivals on {arrivals.topic}: {arrivals.error}")

    arrivals.start()
    try:
        producer = bench_producer(settings)
        _send(producer, topics[0], b"w", WARMUP_RECORDS, record_bytes, alive)
        _wait_for(lambda: arrivals.warm, WARMUP_RECORDS, WARMUP_TIMEOUT_S, 0.0, alive, "warm-up")
        pids = {label: p.process.pid for label, p in processes.items() if p.process is not None}
        with ProcessSampler(pids) as sampler:
            started = time.perf_counter()
            _send(producer, topics[0], b"t", records, record_bytes, reporter.tick(alive))
            total_s = STALL_TIMEOUT_S + records / MIN_RATE_PER_S
            _wait_for(
                lambda: arrivals.timed,
                records,
                STALL_TIMEOUT_S,
                total_s,
                reporter.tick(alive),
                "timed",
            )
        reporter.report()
        return arrivals.last_s - started, sampler.usage(), arrivals.duplicates
    finally:
        arrivals.stop()


class _Reporter:
    """Calls ``progress`` with the timed arrivals since its last call."""

    def __init__(self, arrivals: Arrivals, progress: Progress) -> None:
        self.arrivals, self.progress, self.done = arrivals, progress, 0

    def report(self) -> None:
        now = self.arrivals.timed
        if now > self.done:
            self.progress(now - self.done)
            self.done = now

    def tick(self, also: Callable[[], None]) -> Callable[[], None]:
        def both() -> None:
            also()
            self.report()

        return both


def _send(
    producer: Producer,
    topic: str,
    kind: bytes,
    count: int,
    size: int,
    between: Callable[[], None],
) -> None:
    for start in range(0, count, SEND_CHUNK):
        end = min(count, start + SEND_CHUNK)
        produce_all(producer, topic, [make_record(kind, i, size) for i in range(start, end)])
        between()
    left = producer.flush(FLUSH_TIMEOUT_S)
    if left:
        raise BrokerUnavailable(f"{left} records to {topic} not delivered in {FLUSH_TIMEOUT_S} s")


def _wait_for(
    count: Callable[[], int],
    target: int,
    stall_s: float,
    total_s: float,
    between: Callable[[], None],
    what: str,
) -> None:
    """Wait until ``count() >= target``; StackError when nothing new arrives for
    ``stall_s`` or after ``max(stall_s, total_s)`` in all."""
    now = time.monotonic()
    deadline, stall_deadline, last = now + max(stall_s, total_s), now + stall_s, -1
    while (seen := count()) < target:
        between()
        now = time.monotonic()
        if seen != last:
            last, stall_deadline = seen, now + stall_s
        if now > min(deadline, stall_deadline):
            raise StackError(
                f"{what}: {target - seen} of {target} records did not arrive on the last "
                f"topic in time ({seen} arrived; limit {stall_s:.0f} s without progress, "
                f"{max(stall_s, total_s):.0f} s in all); see the logs in the state dir"
            )
        time.sleep(0.02)

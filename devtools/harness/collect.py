"""The one outcome collector: a background thread reading a pipeline's output
topics from the start, for the demo (how many settled, failed, were seen twice),
the bench (when each stage produced its record) and the pipeline tests.

Latencies come from the timestamps the records carry (``requested_at`` set by
the load generator when it sent the request; ``scored_at``, ``submitted_at``,
``settled_at``, ``failed_at`` set by the worker when it wrote the record), not
from when the collector read them.

A payment's first terminal record (settled or failed) is its outcome. Another
one with the same ``event_id`` is the same record delivered again (Kafka is at
least once); one with a different ``event_id`` is a second outcome, which must
never happen, and is counted apart.

Records are decoded with ``json.loads`` unless the caller passes a faster
decoder (the bench passes orjson's): the demo needs no library of the ``bench``
extra.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaException

from schemas.topics import (
    CHAIN_SUBMITTED,
    FRAUD_SCORED,
    PAYMENTS_DLQ,
    PAYMENTS_FAILED,
    PAYMENTS_REORGED,
    PAYMENTS_SETTLED,
)
from services.bootstrap import kafka_consumer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

# stage -> (topic, field with the stage's time)
STAGES: dict[str, tuple[str, str]] = {
    "scored": (FRAUD_SCORED, "scored_at"),
    "submitted": (CHAIN_SUBMITTED, "submitted_at"),
    "settled": (PAYMENTS_SETTLED, "settled_at"),
    "failed": (PAYMENTS_FAILED, "failed_at"),
    "reorged": (PAYMENTS_REORGED, "occurred_at"),  # undoes a settlement: not a stage
}
TERMINAL = ("settled", "failed")
BATCH_MAX = 5_000  # records per consume() call
POLL_S = 0.2
STOP_TIMEOUT_S = 30.0

Decode = Callable[[bytes], Any]
Progress = Callable[[int], None]


def epoch_s(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Trace:
    """One payment's way through the pipeline: epoch seconds per stage."""

    requested_s: float
    stages: dict[str, float] = field(default_factory=dict)
    tx_hash: str | None = None
    code: str | None = None


@dataclass
class Outcomes:
    """What was read so far, folded record by record (``add``). ``ids``: only
    these payments (None: every one); ``keep_records``: also keep each
    payment's terminal record itself (``settled``, ``failed``)."""

    ids: frozenset[str] | None = None
    keep_records: bool = False
    traces: dict[str, Trace] = field(default_factory=dict)
    outcome_events: dict[str, str] = field(default_factory=dict)  # payment id -> event id
    # payment id -> the reorgs its settled outcome follows (see ``reorged``)
    outcome_reorgs: dict[str, int] = field(default_factory=dict)
    reorged: dict[str, int] = field(default_factory=dict)  # payment id -> settlements undone
    settled: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0  # a second, different outcome for a payment: must never happen
    redelivered: int = 0  # the same outcome record (same event_id) again
    dead_letters: int = 0
    last_s: float = 0.0  # epoch seconds when the latest new outcome was read

    def add(self, stage: str, record: dict[str, Any], read_s: float) -> None:
        """Fold one record of a stage's topic in (``read_s``: when it was read)."""
        if stage == "submitted":  # a record per partition-batch: its payments one by one
            for payment in record.get("payments") or ():
                self._add(stage, {**payment, "submitted_at": record["submitted_at"]}, read_s)
            return
        self._add(stage, record, read_s)

    def _add(self, stage: str, record: dict[str, Any], read_s: float) -> None:
        if stage == "scored":
            request = record.get("request")
            if not isinstance(request, dict):
                return
            pid, requested = str(request["payment_id"]), str(request["requested_at"])
        else:
            pid, requested = str(record["payment_id"]), str(record.get("requested_at") or "")
        if self.ids is not None and pid not in self.ids:
            return
        if stage == "reorged":
            self._reorged(pid, int(record["reorgs"]))
            return
        if stage in TERMINAL:
            self._outcome(stage, pid, record, read_s)
        self._trace(stage, pid, requested, record)

    def _reorged(self, pid: str, reorgs: int) -> None:
        """A reorg undid the payment's settlements before ``reorgs``: a settled
        outcome among them is no outcome any more (the next one follows)."""
        self.reorged[pid] = max(self.reorged.get(pid, 0), reorgs)
        if self.outcome_reorgs.get(pid, reorgs) < reorgs:
            del self.outcome_events[pid], self.outcome_reorgs[pid]
            self.settled.pop(pid, None)

    def _outcome(self, stage: str, pid: str, record: dict[str, Any], read_s: float) -> None:
        event = str(record.get("event_id"))
        reorgs = int(record.get("reorgs") or 0)
        if stage == "settled" and reorgs < self.reorged.get(pid, 0):
            return  # a settlement a reorg undid
        first = self.outcome_events.get(pid)
        if stage == "settled" and first is not None and self.outcome_reorgs.get(pid, 0) < reorgs:
            first = None  # the settlement that followed a reorg replaces the undone one
        if first is not None:
            self.redelivered += first == event
            self.duplicates += first != event
            return
        self.outcome_events[pid] = event
        if stage == "settled":
            self.outcome_reorgs[pid] = reorgs
        self.last_s = read_s
        if self.keep_records:
            (self.settled if stage == "settled" else self.failed)[pid] = record

    def _trace(self, stage: str, pid: str, requested: str, record: dict[str, Any]) -> None:
        trace = self.traces.get(pid)
        if trace is None:
            if not requested:
                return  # a rejection without a request time: nothing to measure from
            trace = self.traces[pid] = Trace(epoch_s(requested))
        trace.stages.setdefault(stage, epoch_s(str(record[STAGES[stage][1]])))  # first wins
        if stage == "settled":
            trace.tx_hash = str(record["tx_hash"])
        if stage == "failed":
            trace.code = str(record["code"])

    def finished(self, ids: Iterable[str]) -> int:
        """How many of these payments have an outcome."""
        return len(self.outcome_events.keys() & set(ids))


class Collector:
    """A background thread consuming a pipeline's output topics from the start
    into ``outcomes`` (a consumer group of its own; nothing is committed)."""

    def __init__(
        self, settings: Settings, outcomes: Outcomes | None = None, decode: Decode = json.loads
    ) -> None:
        self.settings = settings
        self.outcomes = outcomes if outcomes is not None else Outcomes()
        self.decode = decode
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)

    def start(self) -> Collector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def finished(self, ids: Iterable[str]) -> int:
        with self._lock:
            return self.outcomes.finished(ids)

    def traces(self, ids: Iterable[str]) -> dict[str, Trace]:
        """Copies of these payments' traces, safe to read while collecting goes on."""
        with self._lock:
            known = self.outcomes.traces
            return {i: replace(known[i], stages=dict(known[i].stages)) for i in ids if i in known}

    def wait_finished(
        self,
        ids: Iterable[str],
        timeout_s: float,
        progress: Progress | None = None,
        wanted: int | None = None,
    ) -> int:
        """Wait until ``wanted`` (default: all) of these payments have an outcome
        or ``timeout_s`` passed; returns how many have one. Raises what stopped
        the collector, if anything did."""
        ids = set(ids)
        target = len(ids) if wanted is None else min(wanted, len(ids))
        deadline = time.monotonic() + timeout_s
        reported = 0
        while True:
            done = self.finished(ids)
            if progress is not None and done > reported:
                progress(done - reported)
                reported = done
            if self.error is not None:
                raise self.error
            if done >= target or time.monotonic() > deadline:
                return done
            time.sleep(POLL_S)

    def _run(self) -> None:
        topics = {self.settings.topic(t): stage for stage, (t, _) in STAGES.items()}
        dlq = self.settings.topic(PAYMENTS_DLQ)
        group = f"collect-{uuid.uuid4().hex[:8]}"
        try:
            consumer = Consumer(kafka_consumer_config(self.settings, group))
            try:
                consumer.subscribe([*topics, dlq])
                while not self._stop.is_set():
                    batch = consumer.consume(num_messages=BATCH_MAX, timeout=POLL_S)
                    self._fold(batch, topics, dlq)
            finally:
                consumer.close()
        except KafkaException as exc:
            self.error = BrokerUnavailable(f"reading the outcome topics: {exc}")
        except Exception as exc:  # noqa: BLE001 - raised to the waiting caller, not lost
            self.error = exc

    def _fold(self, batch: list[Any], topics: dict[str, str], dlq: str) -> None:
        read_s = time.time()
        with self._lock:
            for msg in batch:
                if msg.error() is not None:
                    continue  # an event, not a record (a topic not created yet)
                if msg.topic() == dlq:
                    self.outcomes.dead_letters += 1
                    continue
                stage = topics.get(msg.topic() or "")
                if stage is not None:
                    self.outcomes.add(stage, self.decode(msg.value() or b"{}"), read_s)


def collect(
    settings: Settings,
    ids: set[str],
    timeout_s: float,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> Outcomes:
    """Read the outcome topics until every one of these payments (or
    ``stop_after`` of them) has an outcome or ``timeout_s`` passed; their
    terminal records are kept."""
    outcomes = Outcomes(ids=frozenset(ids), keep_records=True)
    with Collector(settings, outcomes) as collector:
        collector.wait_finished(ids, timeout_s, progress, stop_after)
    return outcomes

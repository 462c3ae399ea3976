"""Read every output topic of an isolated bench pipeline and keep, per payment,
when each stage produced its record: latencies come from the timestamps the
records carry (``requested_at`` set by the load generator when it sent the
request; ``scored_at``, ``submitted_at``, ``settled_at``, ``failed_at`` set by
the worker when it wrote the record)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from confluent_kafka import Consumer

from schemas.topics import (
    CHAIN_SUBMITTED,
    FRAUD_SCORED,
    PAYMENTS_DLQ,
    PAYMENTS_FAILED,
    PAYMENTS_SETTLED,
)
from services.bootstrap import kafka_consumer_config
from services.settings import Settings

# stage -> (topic, field with the stage's time)
STAGES: dict[str, tuple[str, str]] = {
    "scored": (FRAUD_SCORED, "scored_at"),
    "submitted": (CHAIN_SUBMITTED, "submitted_at"),
    "settled": (PAYMENTS_SETTLED, "settled_at"),
    "failed": (PAYMENTS_FAILED, "failed_at"),
}


def epoch_s(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Trace:
    """One payment's way through the pipeline: epoch seconds per stage."""

    requested_s: float
    stages: dict[str, float] = field(default_factory=dict)
    tx_hash: str | None = None
    code: str | None = None

    @property
    def done(self) -> bool:
        return "settled" in self.stages or "failed" in self.stages


@dataclass
class Collector:
    """A background thread consuming the bench's output topics from the start."""

    settings: Settings
    traces: dict[str, Trace] = field(default_factory=dict)
    dead_letters: int = 0
    done: set[str] = field(default_factory=set)  # payment ids with a terminal outcome
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> Collector:
        self._thread = threading.Thread(target=self._run, name="bench-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def finished(self, ids: set[str]) -> int:
        """How many of these payments have a terminal outcome (settled or failed)."""
        with self._lock:
            return len(self.done.intersection(ids))

    def wait_finished(self, ids: list[str], timeout_s: float) -> int:
        """Wait until every payment has an outcome or ``timeout_s`` passed; returns
        how many have one."""
        deadline = time.monotonic() + timeout_s
        wanted = set(ids)
        done = self.finished(wanted)
        while done < len(wanted) and time.monotonic() < deadline and self.error is None:
            time.sleep(0.2)
            done = self.finished(wanted)
        return done

    def _run(self) -> None:
        topics = {self.settings.topic(t): stage for stage, (t, _) in STAGES.items()}
        dlq = self.settings.topic(PAYMENTS_DLQ)
        consumer = Consumer(
            kafka_consumer_config(self.settings, f"bench-collect-{uuid.uuid4().hex[:8]}")
        )
        consumer.subscribe([*topics, dlq])
        try:
            while not self._stop.is_set():
                batch = consumer.consume(num_messages=5_000, timeout=0.2)
                with self._lock:
                    for msg in batch:
                        if msg.error() is not None:
                            continue
                        if msg.topic() == dlq:
                            self.dead_letters += 1
                            continue
                        stage = topics.get(msg.topic() or "")
                        if stage is not None:
                            self._record(stage, orjson.loads(msg.value() or b"{}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the driver, not lost
            self.error = exc
        finally:
            consumer.close()

    def _record(self, stage: str, record: dict[str, object]) -> None:
        if stage == "scored":
            request = record.get("request")
            if not isinstance(request, dict):
                return
            pid, requested = str(request["payment_id"]), str(request["requested_at"])
        else:
            pid, requested = str(record["payment_id"]), str(record.get("requested_at") or "")
        trace = self.traces.get(pid)
        if trace is None:
            if not requested:
                return  # a rejection without a request time: not from the load generator
            trace = self.traces[pid] = Trace(epoch_s(requested))
        at = epoch_s(str(record[STAGES[stage][1]]))
        trace.stages.setdefault(stage, at)  # redelivered records keep the first time
        if stage == "settled":
            trace.tx_hash = str(record["tx_hash"])
        if stage == "failed":
            trace.code = str(record["code"])
        if trace.done:
            self.done.add(pid)

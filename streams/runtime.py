"""What the agents share at run time: sending outcomes, the DLQ and its guard,
and stopping the worker on a broken invariant (without acking)."""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.chain import ReconciliationAlert
from schemas.codes import ENGINE_FAILURES
from schemas.payments import (
    BatchSubmitted,
    DeadLetter,
    PaymentFailed,
    PaymentScored,
    PaymentSettled,
)
from schemas.topics import PAYMENTS_DLQ, TOPICS
from services.metrics.catalogue import Metrics
from services.metrics.windows import Result
from services.settings import Settings
from streams.outcomes import Emit, Outcome
from streams.progress import Progress
from streams.windows import StageWindows
from streams.windows import declare as declare_windows

log = logging.getLogger("paystream.streams")

EXIT_INVARIANT = 70
EXIT_DLQ_FLOOD = 71


def die(code: int, message: str) -> None:
    """Stop the worker at once: no ack, no offset commit for what is in flight.
    A supervisor restarts it; replays are recognised by the tables."""
    log.critical(message)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass
class DlqGuard:
    """Stops the worker when nearly everything goes to the DLQ (a bad deploy),
    instead of draining a topic into it."""

    window: int
    max_ratio: float
    recent: deque[bool] = field(default_factory=deque)

    def record(self, dead: bool) -> bool:
        """Record one outcome; True when the worker must stop."""
        self.recent.append(dead)
        if len(self.recent) > self.window:
            self.recent.popleft()
        full = len(self.recent) == self.window
        return full and sum(self.recent) / self.window >= self.max_ratio


@dataclass
class Runtime:
    settings: Settings
    topics: dict[str, Any]  # name -> faust topic (raw bytes)
    clock: Callable[[], datetime]
    guard: DlqGuard
    windows: StageWindows
    metrics: Metrics = field(default_factory=Metrics.create)
    progress: Progress = field(default_factory=Progress)  # what reached each agent

    @classmethod
    def build(cls, app: Any, settings: Settings, clock: Callable[[], datetime]) -> Runtime:
        topics = {
            spec.name: app.topic(
                settings.topic(spec.name),
                key_serializer="raw",
                value_serializer="raw",
                partitions=settings.kafka_partitions,
            )
            for spec in TOPICS
        }
        guard = DlqGuard(settings.dlq_window, settings.dlq_max_ratio)
        windows = declare_windows(app, settings.kafka_partitions)
        progress = Progress(stall_s=settings.partition_stall_s)
        return cls(settings, topics, clock, guard, windows, progress=progress)

    def observe(self, emit: Emit) -> None:
        """Count an output in the rolling windows and Prometheus (republished
        records were counted when first published)."""
        value = emit.value
        start: datetime | None
        if isinstance(value, ReconciliationAlert):
            self.metrics.alerts.labels(value.kind).inc()
            return
        if isinstance(value, BatchSubmitted):
            for payment in value.payments:
                self._count("submitted", value, value.outcome == "SUBMITTED", payment.requested_at)
            return
        if isinstance(value, PaymentScored):
            stage, ok, start = "scored", True, value.request.requested_at
        elif isinstance(value, PaymentSettled):
            stage, ok, start = "settled", True, value.requested_at
        elif isinstance(value, PaymentFailed):
            stage, ok, start = "settled", False, value.requested_at
        else:
            return
        if isinstance(value, PaymentScored | PaymentFailed) and value.fraud is not None:
            self.metrics.fraud_check.observe(value.fraud.check_duration_us / 1e6)
        self._count(stage, value, ok, start)

    def _count(self, stage: str, value: object, ok: bool, start: datetime | None) -> None:
        latency_s = (self.clock() - start).total_seconds() if ok and start else None
        outcome = _outcome(value, ok)
        self.windows.record(stage, outcome, latency_s * 1000 if latency_s is not None else None)
        self.metrics.records.labels(stage, outcome).inc()
        if latency_s is not None:
            self.metrics.latency.labels(stage).observe(max(latency_s, 0.0))

    async def send(self, emit: Emit) -> None:
        self.observe(emit)
        await self.topics[emit.topic].send(
            key=emit.key.encode(),
            value=emit.payload(),
            partition=emit.partition,
        )

    async def route(self, outcome: Outcome, message: Any, stage: str) -> None:
        for emit in outcome.emits:
            await self.send(emit)
        if outcome.dead_letter is not None:
            await self.dead_letter(message, outcome.dead_letter, stage)
        if self.guard.record(outcome.dead_letter is not None):
            die(
                EXIT_DLQ_FLOOD,
                f"{stage}: {self.guard.max_ratio:.0%} of the last "
                f"{self.guard.window} records went to the DLQ; stopping the worker",
            )

    async def dead_letter(self, message: Any, error: str, stage: str) -> None:
        key: bytes | None = message.key
        where = (message.topic, message.partition, message.offset)
        record = DeadLetter.of(where, key, message.value or b"", error, stage)
        self.metrics.dead_letters.labels(stage).inc()
        log.warning(
            "dead letter from %s[%s]@%s: %s",
            message.topic,
            message.partition,
            message.offset,
            error[:200],
        )
        await self.topics[PAYMENTS_DLQ].send(key=key, value=record.model_dump_json().encode())


def _outcome(value: object, ok: bool) -> Result:
    """``ok``; ``failed`` for a payment the engine accepted and could not
    settle (``ENGINE_FAILURES``); ``rejected`` for a request the rules refused."""
    if ok:
        return "ok"
    failed = isinstance(value, PaymentFailed) and value.code in ENGINE_FAILURES
    return "failed" if failed or not isinstance(value, PaymentFailed) else "rejected"

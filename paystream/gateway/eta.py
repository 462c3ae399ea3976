"""When a payment's next stage is expected: the median time from its stage to
the next over the last 15 minutes (from ``payment_stages``), counted from when
it reached its stage, plus how far behind the worker reads the topic the next
stage consumes (consumer lag in seconds, measured every ``lag_interval_s``).
Both are refreshed in the background; nothing measured means no ETA. The
same measurements (lag in seconds and records, and how fast the worker reads)
decide admission (``admission.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from schemas.api import Stage
from schemas.topics import CHAIN_SUBMITTED, FRAUD_SCORED, PAYMENTS_REQUESTED
from services.errors import InfrastructureError
from services.settings import Settings
from services.store.gateway import GatewayStore
from streams.ops.lag import LagMeter

log = logging.getLogger("paystream.gateway")

# A status, the stage expected next and the topic whose reader takes it there
# (None: not a Kafka hop). A payment held for review waits for a person: no ETA.
NEXT = {
    "requested": ("scored", PAYMENTS_REQUESTED),
    "review": ("scored", None),
    "scored": ("submitted", FRAUD_SCORED),
    "submitted": ("settled", CHAIN_SUBMITTED),
    "settled": ("finalized", None),
}


class Eta:
    def __init__(self, settings: Settings, store: GatewayStore) -> None:
        self.settings = settings
        self.store = store
        self.latency: dict[str, float] = {}  # stage -> median seconds to the next
        self.lag_s: dict[str, float] = {}  # full topic name -> the worker's lag in seconds
        self.lag_records: dict[str, int] = {}  # full topic name -> records not yet read
        self.drain_per_s: dict[str, float] = {}  # full topic name -> records read per second
        self._read: dict[str, tuple[float, int]] = {}  # topic -> (when, records read so far)

    def next_of(
        self, status: str, stages: dict[str, Stage], now: datetime
    ) -> tuple[str | None, datetime | None]:
        """The next stage and when it is expected (None: ended, or not measured)."""
        if status not in NEXT:
            return None, None
        stage, topic = NEXT[status]
        median = self.latency.get(status)
        entered = stages.get(status)
        if status == "review" or median is None or entered is None:
            return stage, None
        lag = self.lag_s.get(self.settings.topic(topic), 0.0) if topic else 0.0
        due = max(now, entered.at + timedelta(seconds=median))
        return stage, due + timedelta(seconds=lag)

    async def refresh(self, meter: LagMeter) -> None:
        try:
            self.latency = await self.store.stage_latency()
        except InfrastructureError as exc:
            log.warning("stage latencies not measured: %s", exc)
        try:
            groups = await asyncio.to_thread(meter.measure, [self.settings.app_id])
        except InfrastructureError as exc:
            log.warning("consumer lag not measured: %s", exc)
            return
        lag: dict[str, float] = {}
        records: dict[str, int] = {}
        read: dict[str, int] = {}
        for group in groups:
            for p in group.partitions:
                lag[p.topic] = max(lag.get(p.topic, 0.0), p.lag_seconds)
                records[p.topic] = records.get(p.topic, 0) + p.lag
                read[p.topic] = read.get(p.topic, 0) + (p.committed or 0)
        now = time.monotonic()
        for topic, done in read.items():
            then, before = self._read.get(topic, (now, done))
            if now > then:
                self.drain_per_s[topic] = max(0, done - before) / (now - then)
            self._read[topic] = (now, done)
        self.lag_s, self.lag_records = lag, records

    async def run(self) -> None:
        """Refresh until cancelled (a failed refresh keeps the last numbers)."""
        meter = LagMeter(self.settings)
        try:
            while True:
                try:
                    await self.refresh(meter)
                except Exception:
                    log.exception("ETA inputs not refreshed: unexpected error")
                await asyncio.sleep(self.settings.lag_interval_s)
        finally:
            meter.close()

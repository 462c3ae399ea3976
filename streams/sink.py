"""``paystream sink``: the ledger sink. It reads outcomes (reorged settlements
too), fraud checks, submissions to the chain, payments held for review, the
reconciler's deposit credits and reversals and its alerts from the topics in
batches (at most ``batch_max`` records or ``flush_ms``), writes them through
the ``LedgerStore`` in one transaction per batch, then commits the offsets. A
crash between the two replays the batch, which the store recognises
(``processed_events``). A record the store refuses (``RecordsRefused``) goes to
the DLQ with the store's reason and its source offset; the rest of its batch
is written: one bad record never wedges the sink."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from confluent_kafka import Message, Producer
from pydantic import TypeAdapter, ValidationError

from schemas.chain import DEPOSIT_RECORD, ReconciliationAlert
from schemas.payments import (
    BatchSubmitted,
    DeadLetter,
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentScored,
    PaymentSettled,
)
from schemas.records import SinkRecord
from schemas.review import ReviewHeld
from schemas.topics import (
    CHAIN_SUBMITTED,
    DEPOSITS_CREDITED,
    FRAUD_SCORED,
    PAYMENTS_DLQ,
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_REVIEW,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from services.bootstrap import SinkBundle
from services.errors import RecordsRefused, StoreUnavailable
from services.metrics.catalogue import SinkMetrics
from services.settings import Settings

log = logging.getLogger("paystream.sink")
CONSUMER = "ledger-sink"


def group_id(settings: Settings) -> str:
    """The sink's consumer group (one per app id)."""
    return f"{settings.app_id}-{CONSUMER}"


DECODERS: dict[str, TypeAdapter[object]] = {
    PAYMENTS_SETTLED: TypeAdapter(PaymentSettled),
    PAYMENTS_FAILED: TypeAdapter(PaymentFailed),
    FRAUD_SCORED: TypeAdapter(PaymentScored),
    CHAIN_SUBMITTED: TypeAdapter(BatchSubmitted),
    PAYMENTS_REORGED: TypeAdapter(PaymentReorged),
    PAYMENTS_FINALIZED: TypeAdapter(PaymentFinalized),
    DEPOSITS_CREDITED: DEPOSIT_RECORD,  # type: ignore[dict-item]
    PAYMENTS_REVIEW: TypeAdapter(ReviewHeld),
    RECONCILIATION_ALERTS: TypeAdapter(ReconciliationAlert),
}


def decode(base_topic: str, raw: bytes) -> SinkRecord:
    """The record of one of the sink's topics."""
    value: SinkRecord = DECODERS[base_topic].validate_json(raw)  # type: ignore[assignment]
    return value


class LedgerSink:
    def __init__(
        self,
        settings: Settings,
        bundle: SinkBundle,
        batch_max: int = 2_000,
        flush_ms: int = 100,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or SinkMetrics.create()
        self.refused = 0  # records of the batch being written that went to the DLQ
        self.store = bundle.store
        self.consumer = bundle.consumer
        self.producer = bundle.producer
        self.batch_max = batch_max
        self.flush_s = flush_ms / 1000
        self.base = {settings.topic(t): t for t in DECODERS}

    def _dead(self, producer: Producer, msg: Message, error: str) -> None:
        key = msg.key()
        where = (str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
        record = DeadLetter.of(where, key, msg.value() or b"", error, CONSUMER)
        self.metrics.records.labels("dead").inc()
        producer.produce(
            self.settings.topic(PAYMENTS_DLQ), key=key, value=record.model_dump_json().encode()
        )

    async def _write(self, batch: list[tuple[Message, SinkRecord]]) -> int:
        """Write a batch; a record the store refuses for what it holds goes to the
        DLQ with the store's reason, the batch halved until it is found."""
        try:
            return await self._apply([record for _, record in batch])
        except RecordsRefused as exc:
            if len(batch) == 1:
                log.error("the ledger store refused a record (to the DLQ): %s", exc)
                self._dead(self.producer, batch[0][0], f"refused by the ledger store: {exc}")
                self.refused += 1
                return 0
            half = len(batch) // 2
            return await self._write(batch[:half]) + await self._write(batch[half:])

    async def _timed_write(self, batch: list[tuple[Message, SinkRecord]]) -> int:
        self.refused = 0
        with self.metrics.batches.time():
            written = await self._write(batch)
        self.metrics.records.labels("written").inc(written)
        self.metrics.records.labels("replayed").inc(len(batch) - written - self.refused)
        return written

    async def _apply(self, records: list[SinkRecord]) -> int:
        delay = 0.2
        for attempt in range(6):
            try:
                return await self.store.apply(CONSUMER, records)
            except StoreUnavailable:
                if attempt == 5:
                    raise  # stop without committing: the batch is read again
                await asyncio.sleep(delay)
                delay *= 2
        return 0

    def _records(self, msgs: list[Message]) -> list[tuple[Message, SinkRecord]]:
        """The ledger's records of a batch, with their messages; undecodable ones
        go to the DLQ."""
        records: list[tuple[Message, SinkRecord]] = []
        for msg in msgs:
            error = msg.error()
            if error is not None:  # a consumer event (e.g. a missing topic), not a record
                log.warning("consumer: %s", error)
                continue
            try:
                record = decode(self.base[str(msg.topic())], msg.value() or b"")
            except ValidationError as exc:
                self._dead(self.producer, msg, f"undecodable: {exc}")
                continue
            records.append((msg, record))
        return records

    async def run(
        self, stop: Callable[[], bool], on_batch: Callable[[int], None] = lambda _: None
    ) -> None:
        """Until ``stop()``: read a batch, write it, then commit its offsets."""
        self.consumer.subscribe(list(self.base))
        while not stop():
            msgs = await asyncio.to_thread(self.consumer.consume, self.batch_max, self.flush_s)
            records = self._records(msgs)
            if records:
                on_batch(await self._timed_write(records))
            if msgs:
                self.producer.flush(30)
                self.consumer.commit(asynchronous=False)

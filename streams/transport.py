"""Faust's Kafka transport with two of its fixed costs removed (ADR 0014).

1. **Delivery without ``wait_first`` when it cannot block.** Faust's consumer
   hands every record to the conductor inside ``Service.wait_first(callback,
   suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per record, so
   that a delivery blocked on flow control, a full producer buffer or a full
   stream queue can be cut short by a rebalance or a stop. When none of these
   can block (flow is on and not being suspended, the producer buffer is at
   or under its limit and no stream queue is full), the delivery runs to its
   end without yielding, so awaiting it directly does the same thing at a
   fraction of the cost. Otherwise Faust's own path runs.
2. **No fetched record dropped.** Faust's ``getmany`` filters the records
   aiokafka returns against the live set of active partitions: a partition
   paused while its fetch was in flight (table recovery pauses and resumes
   them around every assignment) loses those records, although aiokafka has
   moved its position past them. Its later records are then delivered first,
   out of order. Seen in the fault suite: an operator's review decisions
   dropped at a worker's start, and the expiry decisions written 30 s later
   delivered before them. ``FastConsumer.getmany`` compares what was fetched
   with what was delivered and seeks such a partition back to its first
   undelivered record (``read_again``), so records reach their agents in
   offset order. Records dropped by a rebalance are left to it: Faust seeks
   every partition it assigns to the committed offset, which
   ``streams/commits.py`` keeps behind them.
3. **Fetch batching.** Faust builds its aiokafka consumer with
   ``fetch_max_wait_ms=1500`` and ``fetch_min_bytes=1``, with no setting for
   either: under a steady trickle every fetch brings back a record or two.
   The worker's consumer waits for ``faust_fetch_min_bytes`` or
   ``faust_fetch_max_wait_ms``, whichever comes first.

Both lean on faust-streaming 0.15.3's internals (the call site in
``Consumer._drain_messages``, the consumer's private fetch attributes);
``tests/unit/test_transport.py`` pins them, and ``docs/upstream/`` holds the
text of the pull request that would make this module unnecessary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.services import WaitResults

log = logging.getLogger("paystream.streams")

FAUST_VERSION = "0.15.3"  # the version whose internals this module relies on
SEEK_TIMEOUT_S = 10.0


def undelivered(fetched: Mapping[TP, Sequence[Any]], delivered: Mapping[TP, int]) -> dict[TP, int]:
    """Per partition with fetched records that were not handed on: the offset of
    the first of them. ``fetched``: the records of one fetch, in offset order;
    ``delivered``: the last offset handed on per partition."""
    first: dict[TP, int] = {}
    for tp, records in fetched.items():
        last = delivered.get(tp)
        after = [r.offset for r in records if last is None or r.offset > last]
        if after:
            first[tp] = after[0]
    return first


class FetchTuning:
    """The fetch settings the worker's consumer uses (Faust has none)."""

    def __init__(self, min_bytes: int, max_wait_ms: int) -> None:
        self.min_bytes, self.max_wait_ms = min_bytes, max_wait_ms


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its worker consumer built with the fetch tuning."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        tuning: FetchTuning | None = getattr(transport, "fetch_tuning", None)
        if tuning is not None:  # read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._fetch_min_bytes = tuning.min_bytes
            consumer._fetch_max_wait_ms = tuning.max_wait_ms
        return consumer


class FastConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; a delivery that cannot block is awaited
    directly, and no fetched record is dropped."""

    _fetched: Mapping[TP, Sequence[Any]] | None = None  # the last fetch's records

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        records, active = await super()._wait_next_records(timeout)
        self._fetched = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109 - Faust's signature
        """Faust's ``getmany``; a partition whose fetched records it dropped
        outside a rebalance is read again from the first of them."""
        generation = self.app.consumer_generation_id
        delivered: dict[TP, int] = {}
        async for tp, message in super().getmany(timeout):
            delivered[tp] = message.offset
            yield tp, message
        fetched, self._fetched = self._fetched, None
        if not fetched or self.app.consumer_generation_id != generation:
            return  # a rebalance seeks every partition it assigns to the committed offset
        if not self.flow_active or self.should_stop:
            return
        assigned = self.assignment()
        dropped = {tp: o for tp, o in undelivered(fetched, delivered).items() if tp in assigned}
        if not dropped:
            return
        log.warning("records fetched but dropped by Faust; reading them again from %s", dropped)
        try:
            await self.read_again(dropped)
        except Exception:  # their commit waits for them; the partition watchdog repairs it
            log.warning("reading %s again failed", dropped, exc_info=True)

    async def read_again(self, partitions: Mapping[TP, int]) -> None:
        """Seek ``partitions`` to these offsets and deliver their records again
        from there (Faust drops a record below a partition's read offset)."""
        await asyncio.wait_for(self.seek_wait(partitions), SEEK_TIMEOUT_S)
        for tp, offset in partitions.items():
            self._read_offset[tp] = offset if offset else None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def delivery_cannot_block(self) -> bool:
        """True when the conductor's ``on_message`` would run to its end without
        yielding: flow is on (and not being suspended by a rebalance), the
        producer buffer is at or under its limit, no stream queue is full, and
        this consumer is neither stopping nor crashed."""
        app = self.app
        if self.suspend_flow.is_set() or self.should_stop or self._crashed.is_set():
            return False
        if not app.flow_control.is_active():
            return False
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages:
            return False
        return not any(channel.queue.full() for channel in app.topics)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 - mode's signature
        """The consumer's only ``wait_first``: ``(callback(message),
        suspend_flow.wait())`` for each record read (pinned by the unit test)."""
        if timeout is None and len(coros) == 2 and self.delivery_cannot_block():
            delivery, suspended = coros
            close = getattr(suspended, "close", None)
            if close is not None:
                close()  # never awaited: the delivery cannot be interrupted
            result = await delivery
            return WaitResults([delivery], [result], False)
        return await super().wait_first(*coros, timeout=timeout)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the fast consumer and the fetch tuning."""

    Consumer = FastConsumer
    fetch_tuning: FetchTuning | None = None


def install(app: faust.App, fetch: FetchTuning) -> None:
    """Give ``app`` the tuned transport; call it before anything declares a
    topic, table or agent (they reach the transport through the conductor)."""
    transport = Transport(app.conf.broker_consumer, app)
    transport.fetch_tuning = fetch
    app.transport = transport

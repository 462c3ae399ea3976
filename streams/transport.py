"""Faust's Kafka transport: two fixed costs removed, records in order, commits after the writes.

1. **Delivery without ``wait_first`` when it cannot block.** Faust's consumer
   hands every record to the conductor inside ``Service.wait_first(callback,
   suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per record, so
   that a delivery blocked on flow control, a full producer buffer or a full
   stream queue can be cut short by a rebalance or a stop. When none of these
   can block (flow is on and not being suspended, the producer buffer is at
   or under its limit and no stream queue is full), the delivery runs to its
   end without yielding, so awaiting it directly does the same thing at a
   fraction of the cost. Otherwise Faust's own path runs.
2. **Records in offset order.** Faust can hand a partition's records on with
   a hole before them: its ``getmany`` drops the records of a partition
   paused while their fetch was in flight (table recovery pauses and resumes
   partitions around every assignment), and a stream skips records delivered
   while flow is off, which happens around the seek to the committed offsets
   at every assignment. The later records then arrive first. Seen in the
   fault suite: an operator's review decisions lost at a worker's start and
   the expiry decisions written 30 s later applied in their place. The
   consumer knows, per partition, the offset that must come next (the
   committed one after Faust's seek, or the first one of a partition the
   group never committed, then one past each record delivered);
   a record past it is held back, with the rest of its partition's fetch, and
   the partition is sought back to it (``read_again``). Handlers are
   idempotent, so a record delivered twice around a seek does no harm; a
   record never delivered is a lost payment.
3. **Fetch batching.** Faust builds its aiokafka consumer with
   ``fetch_max_wait_ms=1500`` and ``fetch_min_bytes=1``, with no setting for
   either: under a steady trickle every fetch brings back a record or two.
   The worker's consumer waits for ``faust_fetch_min_bytes`` or
   ``faust_fetch_max_wait_ms``, whichever comes first.

4. **Commits after the writes** (ADR 0017). The transport's producer
   tracks every write, and the consumer commits offsets only once Kafka has
   acknowledged the writes made before them: while records flow, one commit
   later, without waiting (``streams/writes.py``).

They lean on faust-streaming 0.15.3's internals (the call site in
``Consumer._drain_messages``, the consumer's private fetch attributes);
``tests/unit/test_transport.py`` pins them, and ``docs/upstream/`` holds the
text of the pull request that would make this module unnecessary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.services import WaitResults

from streams.writes import DurableProducer, Staged, Writes

log = logging.getLogger("paystream.streams")

FAUST_VERSION = "0.15.3"  # the version whose internals this module relies on
SEEK_TIMEOUT_S = 10.0
WRITES_TIMEOUT_S = 10.0  # a commit with flow stopped waits this long for its writes
REREADS = 3  # a partition sought back this often to one offset: the records are gone


class InOrder:
    """Per partition, the offset of the record to deliver next: known after a
    seek to the committed offsets (``sought``), then one past each record
    delivered. A partition without one (its first offset not known) takes
    any record."""

    def __init__(self) -> None:
        self.next: dict[TP, int] = {}
        self.tries: dict[TP, tuple[int, int]] = {}  # offset read again, times

    def sought(self, offsets: Mapping[TP, int | None]) -> None:
        """Every assigned partition was sought to these offsets."""
        self.next = {tp: o for tp, o in offsets.items() if o is not None and o >= 0}
        self.tries.clear()

    def admit(self, tp: TP, offset: int) -> int | None:
        """None: the record may be delivered (a record the partition already
        had passes: Faust sorts those out). Otherwise the offset to read the
        partition again from."""
        expected = self.next.get(tp)
        if expected is not None and offset > expected:
            return expected
        if expected is None or offset >= expected:
            self.next[tp] = offset + 1
            self.tries.pop(tp, None)
        return None

    def count_rereads(self, held: Mapping[TP, int]) -> None:
        """The partitions ``held`` back are about to be sought back to these
        offsets. One sought back ``REREADS`` times to an offset that never
        comes (gone from Kafka) takes whatever comes next after this seek."""
        for tp, offset in held.items():
            last, times = self.tries.get(tp, (offset, 0))
            self.tries[tp] = (offset, times + 1 if last == offset else 1)
            if self.tries[tp][1] > REREADS:
                log.error("%s: offset %s never comes; going on from the next one", tp, offset)

    def moved(self, offsets: Mapping[TP, int]) -> None:
        """These partitions were sought to these offsets."""
        for tp, offset in offsets.items():
            if self.tries.get(tp, (offset, 0))[1] > REREADS:
                self.next.pop(tp, None)
            else:
                self.next[tp] = offset


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
    directly, and each partition's records are delivered in offset order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_order = InOrder()
        self.staged = Staged()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's seek of every assigned partition to its committed offset
        (``perform_seek``, at each assignment). A partition of an agent's topic
        the group never committed starts at its first offset (the consumers
        read from the earliest): records skipped there before a first commit
        are read again too, not committed over."""
        committed = await super().seek_to_committed()
        acking = self.app.topics.acks_enabled_for
        fresh = [tp for tp, o in committed.items() if (o is None or o < 0) and acking(tp.topic)]
        first: Mapping[TP, int] = {}
        try:
            first = await self.earliest_offsets(*fresh) if fresh else {}
        except Exception:  # those partitions take any first record, as Faust does
            log.warning("first offsets of %s not read", fresh, exc_info=True)
        self.in_order.sought({**committed, **first})
        return committed

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109 - Faust's signature
        """Faust's ``getmany``, a partition's records held back from the first
        one past a hole; such a partition is read again from the hole."""
        held: dict[TP, int] = {}
        acking = self.app.topics.acks_enabled_for
        async for tp, message in super().getmany(timeout):
            if tp in held:
                continue
            hole = self.in_order.admit(tp, message.offset) if acking(message.topic) else None
            if hole is not None:
                held[tp] = hole
                continue
            yield tp, message
        if held and self.flow_active and not self.should_stop:
            await self._read_held_again(held)

    async def _read_held_again(self, held: Mapping[TP, int]) -> None:
        assigned = self.assignment()
        seek = {tp: offset for tp, offset in held.items() if tp in assigned}
        if not seek:
            return
        self.in_order.count_rereads(seek)
        log.warning("records delivered past a hole; reading again from %s", seek)
        try:
            await self.read_again(seek)
        except Exception:  # held back, never acked: the partition watchdog repairs it
            log.warning("reading %s again failed", seek, exc_info=True)

    async def read_again(self, partitions: Mapping[TP, int]) -> None:
        """Seek ``partitions`` to these offsets and deliver their records again
        from there (Faust drops a record below a partition's read offset)."""
        await asyncio.wait_for(self.seek_wait(partitions), SEEK_TIMEOUT_S)
        for tp, offset in partitions.items():
            self._read_offset[tp] = offset if offset else None
        self.in_order.moved(partitions)

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        """Faust's commit of offsets whose records' writes (table changes and
        outputs) Kafka has all acknowledged (``streams/writes.py``): while
        records flow, the offsets staged at the previous commit once their
        writes are in; when flow stops, the latest ones after waiting for the
        writes."""
        writes: Writes | None = getattr(self.app.producer, "writes", None)
        if writes is None:  # a producer that does not track its writes
            pass
        elif not self.flow_active or self.should_stop:  # a rebalance or a stop
            if not await writes.settled(self.staged.clear(writes), WRITES_TIMEOUT_S):
                return False  # the latest offsets only once written
        else:
            generation = self.app.consumer_generation_id
            ready = self.staged.take(writes, generation)
            self.staged.stage(offsets, writes, generation)
            if ready is None or writes.lost:
                return False
            offsets = {tp: o for tp, o in ready.items() if self._should_commit(tp, o)}
        committed: bool = await super()._commit_offsets(offsets, start_new_transaction)
        return committed

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
    Producer = DurableProducer
    fetch_tuning: FetchTuning | None = None


def install(app: faust.App, fetch: FetchTuning) -> None:
    """Give ``app`` the tuned transport; call it before anything declares a
    topic, table or agent (they reach the transport through the conductor)."""
    transport = Transport(app.conf.broker_consumer, app)
    transport.fetch_tuning = fetch
    app.transport = transport

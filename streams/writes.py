"""No offset is committed before the writes of the records it covers are in Kafka.

A handler's effects are Kafka writes: its table changes (changelog records,
queued in Faust's producer buffer by ``send_soon``) and its output records
(``send``, handed to aiokafka). Faust commits after ``producer.flush()``, which
does not wait for them: the buffer's flush gives up when no record leaves it
for 0.1 s (a full aiokafka batch, a busy loop) and forgets the record its
sender holds, and a write Kafka refused is only logged. A SIGKILL after such a
commit lost the write for good: in a CI fault run, four payments' ``payments``
table entries never reached the changelog while their requests were
committed; their ``fraud.scored`` records did, and the settlement agent
ignored them (no payment awaiting a batch), so they never had an outcome.

``DurableProducer`` keeps every write not yet acknowledged by Kafka
(``Writes``). The worker's consumer (``FastConsumer._commit_offsets``)
commits offsets only once all writes made before they were computed are
acknowledged: at each commit it commits the offsets staged at the previous
one if their writes are in, and stages the new ones (``Staged``), so a
commit never waits for Kafka while records flow. When flow stops (a
rebalance, a stop) it waits for the writes, at most ``WRITES_TIMEOUT_S``,
and commits the latest offsets; if they are not in by then it commits
nothing (the offsets stay acked and are offered again,
``streams/commits.py``).

A write Kafka refused stops the worker with exit code 75 at the next commit:
its table is ahead of its changelog, and only a restart (tables read back
from the changelogs, records read again from the last commit) makes them
agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka

from services.errors import InfrastructureError
from streams.runtime import die

log = logging.getLogger("paystream.streams")

EXIT_WRITE_LOST = 75
FLUSH_TIMEOUT_S = 10.0  # ``durable`` waits this long for the writes
COMPACT_AT = 20_000  # tracked writes between two drops of the acknowledged ones


class Writes:
    """The writes made since the offsets were last staged (a list: no
    callback per write), and how many were lost."""

    def __init__(self) -> None:
        self.recent: list[asyncio.Future[Any]] = []
        self.staged: list[asyncio.Future[Any]] = []  # the staged offsets wait for these
        self.lost = 0  # refused or cancelled: no commit may pass them
        self.compact_at = COMPACT_AT

    def track(self, write: asyncio.Future[Any]) -> None:
        recent = self.recent
        recent.append(write)
        if len(recent) >= self.compact_at:  # writes with no commit after them (timers)
            self.recent = self.unwritten(recent)
            self.compact_at = max(COMPACT_AT, 2 * len(self.recent))

    def take(self) -> list[asyncio.Future[Any]]:
        """The writes made since the last ``take``; tracked anew from now."""
        recent, self.recent = self.recent, []
        self.compact_at = COMPACT_AT
        return recent

    def unwritten(self, writes: list[asyncio.Future[Any]]) -> list[asyncio.Future[Any]]:
        """Those of ``writes`` Kafka has not acknowledged yet. A write it
        refused stops the worker (exit 75); a cancelled one (the producer
        stopping) is counted as lost."""
        waiting = []
        for write in writes:
            if not write.done():
                waiting.append(write)
            elif write.cancelled():
                self.lost += 1
            elif (error := write.exception()) is not None:
                self.lost += 1
                die(EXIT_WRITE_LOST, f"a write to Kafka failed ({error!r}); restart to redo it")
        return waiting

    async def acknowledged(self, writes: list[asyncio.Future[Any]], timeout_s: float) -> bool:
        """True once ``writes`` are all acknowledged and none was ever lost;
        False if one is still pending after ``timeout_s``."""
        waiting = self.unwritten(writes)
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=timeout_s)
            self.unwritten(waiting)
            if late:
                log.warning(
                    "%d writes not acknowledged by Kafka after %.0f s", len(late), timeout_s
                )
                return False
        return not self.lost

    async def flushed(self, timeout_s: float) -> bool:
        """Every write made so far acknowledged (they stay tracked for the
        commits)."""
        return await self.acknowledged([*self.staged, *self.recent], timeout_s)

    async def settled(self, earlier: list[asyncio.Future[Any]], timeout_s: float) -> bool:
        """``earlier`` and every write tracked since acknowledged (taken:
        the latest offsets are committed next)."""
        done = await self.acknowledged([*earlier, *self.take()], timeout_s)
        if self.lost:
            log.error("%d writes lost: no offset is committed any more", self.lost)
        return done


class Staged:
    """Offsets to commit once the writes made before them are acknowledged.

    At each commit the consumer takes the offsets staged at the one before if
    their writes (``Writes.staged``) are all in Kafka, and stages the new ones
    with the writes made since the last staging (the earlier ones are in by
    then: the slot was freed). A commit never waits for Kafka, and trails the
    handled records by one commit interval. A slot that is not ready keeps its
    offsets (the new ones are offered again at the next commit)."""

    def __init__(self) -> None:
        self.offsets: Mapping[Any, int] | None = None
        self.generation: int | None = None

    def take(self, writes: Writes, generation: int) -> Mapping[Any, int] | None:
        """The staged offsets if their writes are acknowledged (the slot is
        then free); None while some are not, or when nothing is staged. Offsets
        staged in another generation of the group are dropped."""
        if self.offsets is None:
            return None
        if self.generation != generation:
            self.offsets, self.generation = None, None
            return None
        writes.staged = writes.unwritten(writes.staged)
        if writes.staged:
            return None
        offsets, self.offsets = self.offsets, None
        return offsets

    def stage(self, offsets: Mapping[Any, int], writes: Writes, generation: int) -> None:
        if self.offsets is None:
            self.offsets, self.generation = dict(offsets), generation
            writes.staged = [*writes.staged, *writes.take()]

    def clear(self, writes: Writes) -> list[asyncio.Future[Any]]:
        """Drop the staged offsets; the writes they waited for (handed back:
        ``writes`` tracks them no more)."""
        waiting, writes.staged = writes.staged, []
        self.offsets, self.generation = None, None
        return waiting


async def durable(producer: Any) -> None:
    """Return once every write ``producer`` made so far is in Kafka: Faust's
    flush, then (the worker's producer) each write's acknowledgement, for
    what must be durable before an effect outside Kafka (a transaction sent,
    the listener's cursor moved). ``InfrastructureError`` if a write is not
    acknowledged within ``FLUSH_TIMEOUT_S``: the caller tries again later."""
    await producer.flush()
    writes: Writes | None = getattr(producer, "writes", None)
    if writes is not None and not await writes.flushed(FLUSH_TIMEOUT_S):
        raise InfrastructureError(f"writes not acknowledged by Kafka within {FLUSH_TIMEOUT_S} s")


class DurableProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer; every write is tracked until Kafka acknowledges it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes = Writes()

    def send_soon(self, fut: Any) -> None:  # a table's changelog record
        self.writes.track(fut)
        super().send_soon(fut)

    async def send(self, *args: Any, **kwargs: Any) -> Any:  # a topic's record
        delivery = await super().send(*args, **kwargs)
        self.writes.track(cast("asyncio.Future[Any]", delivery))  # aiokafka's future
        return delivery

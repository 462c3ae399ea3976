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
(``Writes``); the worker's consumer commits only once all writes made before
the commit are acknowledged (``FastConsumer._commit_offsets``), and skips the
commit otherwise (the next one tries again: the offsets are not lost,
``streams/commits.py``). A write Kafka refuses stops the worker with exit code
75: its table is ahead of its changelog, and only a restart (tables read back
from the changelogs, records read again from the last commit) makes them
agree.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.runtime import die

log = logging.getLogger("paystream.streams")

EXIT_WRITE_LOST = 75


class Writes:
    """The writes Kafka has not acknowledged yet, and whether one was lost."""

    def __init__(self) -> None:
        self.pending: set[asyncio.Future[Any]] = set()
        self.lost = 0  # refused or cancelled: no commit may pass them

    def track(self, write: asyncio.Future[Any]) -> None:
        if write.done():
            self._done(write)
            return
        self.pending.add(write)
        write.add_done_callback(self._done)

    def _done(self, write: asyncio.Future[Any]) -> None:
        self.pending.discard(write)
        if write.cancelled():  # only when the producer stops
            self.lost += 1
            return
        error = write.exception()
        if error is not None:
            self.lost += 1
            die(EXIT_WRITE_LOST, f"a write to Kafka failed ({error!r}); restart to read it again")

    async def settled(self, timeout_s: float) -> bool:
        """True when every write made so far is acknowledged; False if one is
        still pending after ``timeout_s``, or was lost."""
        waiting = list(self.pending)
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=timeout_s)
            if late:
                log.warning(
                    "%d writes not acknowledged by Kafka after %.0f s: offsets not committed",
                    len(late),
                    timeout_s,
                )
                return False
        if self.lost:
            log.error("%d writes lost: no offset is committed any more", self.lost)
        return not self.lost


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
        self.writes.track(asyncio.ensure_future(delivery))  # aiokafka's future, as is
        return delivery

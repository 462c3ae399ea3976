"""The chain listener's timer: on the Faust leader only, poll the chain and
publish what ``ChainListener`` found to ``chain.events``; and export what the
leader sees of the chain (its head, how long since it last advanced, the
listener's block, whether settlement is halted) as metrics.

The cursor is saved only after the records of a poll are in Kafka (acknowledged:
``streams/writes.py``, ``durable``), so a crash re-emits rather than skips (the
reconciler recognises a replay). While this worker leads it keeps the cursor
in memory; when it has not polled for a while
(ten poll intervals: it may just have become the leader), it loads the saved
one, which another leader may have moved on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import faust

from schemas.cursor import Cursor
from services.errors import InfrastructureError
from services.metrics.catalogue import Metrics
from services.ports import WorkerPorts
from services.settings import Settings
from streams.connection import Connection
from streams.listener import ChainListener, per_partition
from streams.outcomes import Emit

log = logging.getLogger("paystream.streams")
HALT_CHECK_S = 5.0  # how often the leader reads whether settlement is halted
LEADING_S = 10.0  # a worker whose listener timer has not ticked for this long does not lead
BACKOFF_MAX_S = 30.0  # the longest wait between failed polls


class Listening:
    def __init__(
        self,
        settings: Settings,
        connection: Connection,
        send: Callable[[Emit], Awaitable[None]],
        flush_producer: Callable[[], Awaitable[None]],
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics.create()
        self.head = -1  # the last head seen, and when it advanced (monotonic)
        self.head_advanced_at = time.monotonic()
        self.halt_checked_at = -HALT_CHECK_S
        self.ticked_at = -float("inf")  # this worker leads while its timer ticks
        self.metrics.chain_head_age.set_function(self._head_age)
        self.connection = connection
        self.send = send  # publishes a chain.events record (into the producer's buffer)
        self.flush_producer = flush_producer  # waits until what was sent is in Kafka
        self.listener: ChainListener | None = None  # built once the ports are connected
        self.cursor: Cursor | None = None  # the listener's, saved per block
        self.polled_at = 0.0  # monotonic time of the last poll
        self.failures = 0  # polls failed in a row
        self.retry_at = 0.0  # monotonic time before which no poll is tried

    def failed(self) -> float:
        """A poll failed: the next waits twice as long as the last (0.2 s, up to
        BACKOFF_MAX_S). Returns the wait."""
        self.failures += 1
        wait_s = min(BACKOFF_MAX_S, 0.1 * 2.0**self.failures)
        self.retry_at = time.monotonic() + wait_s
        return wait_s

    async def tick(self) -> None:
        """One poll (nothing until the worker's ports are connected, or while
        backing off after a failure)."""
        self.ticked_at = time.monotonic()
        if not self.connection.ready.is_set() or time.monotonic() < self.retry_at:
            return
        ports = self.connection.ports
        if time.monotonic() - self.polled_at > 10 * self.settings.listener_poll_ms / 1000:
            self.cursor = await ports.cursors.load()  # another leader may have moved it on
        self.polled_at = time.monotonic()
        poll = await self._listener(ports).poll(self.cursor)
        self._seen(poll.head)
        if poll.reorged_from is not None:
            log.warning("reorg: blocks from %s were replaced", poll.reorged_from)
        for emit in per_partition(poll.emits, self.settings.kafka_partitions):
            await self.send(emit)
        if poll.emits:
            await self.flush_producer()  # in Kafka before the cursor moves past them
        if poll.cursor is not None and poll.cursor is not self.cursor:
            await ports.cursors.save(poll.cursor)
            self.cursor = poll.cursor
            self.metrics.listener_block.set(poll.cursor.last_block)
        self.failures = 0
        await self._check_halt(ports)

    async def _check_halt(self, ports: WorkerPorts) -> None:
        """Every HALT_CHECK_S: whether settlement is halted (the gauge keeps its
        value when PostgreSQL does not answer)."""
        if time.monotonic() - self.halt_checked_at < HALT_CHECK_S:
            return
        self.halt_checked_at = time.monotonic()
        try:
            halted = await ports.claims.halted() is not None
        except InfrastructureError as exc:
            log.warning("settlement halt not read: %s", exc)
            return
        self.metrics.settlement_halted.set(1 if halted else 0)

    def _head_age(self) -> float:
        """Seconds since the chain's head last advanced as this worker saw it;
        NaN unless it leads (its timer ticked within LEADING_S) and saw a head."""
        now = time.monotonic()
        if self.head < 0 or now - self.ticked_at > LEADING_S:
            return math.nan
        return now - self.head_advanced_at

    def _seen(self, head: int | None) -> None:
        if head is not None and head > self.head:
            self.head, self.head_advanced_at = head, time.monotonic()
            self.metrics.chain_head.set(head)

    def _listener(self, ports: WorkerPorts) -> ChainListener:
        if self.listener is None:
            start = self.settings.listener_start_block
            self.listener = ChainListener(ports.chain, ports.claims, self.settings, start)
        return self.listener


def register(app: faust.App, listening: Listening) -> None:
    """The listener's timer, run by the leader only."""

    @app.timer(interval=listening.settings.listener_poll_ms / 1000, on_leader=True)
    async def listen() -> None:
        try:
            await listening.tick()
        except InfrastructureError as exc:  # the cursor did not move: polled again later
            log.warning("chain listener: %s; polling again in %.1f s", exc, listening.failed())
        except Exception:  # a timer that raises stops the worker
            wait_s = listening.failed()
            log.exception("chain listener: unexpected error; polling again in %.1f s", wait_s)

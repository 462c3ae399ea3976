"""The chain listener's timer: on the Faust leader only, poll the chain and
publish what ``ChainListener`` found to ``chain.events``.

The cursor is saved only after the records of a poll are in Kafka (the
producer is flushed first), so a crash re-emits rather than skips (the
reconciler recognises a replay). While this worker leads it keeps the cursor
in memory; when it has not polled for a while
(ten poll intervals: it may just have become the leader), it loads the saved
one, which another leader may have moved on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import faust

from schemas.cursor import Cursor
from services.errors import InfrastructureError
from services.ports import WorkerPorts
from services.settings import Settings
from streams.connection import Connection
from streams.listener import ChainListener
from streams.outcomes import Emit

log = logging.getLogger("paystream.streams")
BACKOFF_MAX_S = 30.0  # the longest wait between failed polls


class Listening:
    def __init__(
        self,
        settings: Settings,
        connection: Connection,
        send: Callable[[Emit], Awaitable[None]],
        flush_producer: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
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
        if not self.connection.ready.is_set() or time.monotonic() < self.retry_at:
            return
        ports = self.connection.ports
        if time.monotonic() - self.polled_at > 10 * self.settings.listener_poll_ms / 1000:
            self.cursor = await ports.cursors.load()  # another leader may have moved it on
        self.polled_at = time.monotonic()
        poll = await self._listener(ports).poll(self.cursor)
        if poll.reorged_from is not None:
            log.warning("reorg: blocks from %s were replaced", poll.reorged_from)
        for emit in poll.emits:
            await self.send(emit)
        if poll.emits:
            await self.flush_producer()  # in Kafka before the cursor moves past them
        if poll.cursor is not None and poll.cursor is not self.cursor:
            await ports.cursors.save(poll.cursor)
            self.cursor = poll.cursor
        self.failures = 0

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

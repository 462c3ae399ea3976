"""The settlement scheduler: when batches leave for the chain, and how many at once.

Two timers drive it. The flusher (every ``FLUSH_INTERVAL_S``) takes the batches
that are full or have waited ``batch_wait_ms`` from the batching state that the
settlement agent fills. The sweeper (every ``SWEEP_INTERVAL_S``) re-sends what
the ``payments`` table says was batched but never submitted (the worker died,
or sending gave up). Each batch is submitted in its own task, at most
``settle_concurrency`` at a time.

All of this state lives in one ``Scheduler``: the tasks in flight, the batches
this worker has taken (``Submissions``) and the count of transactions on their
way to the chain, which the flusher reads to let due batches keep filling while
the chain is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import faust

from streams.connection import Connection
from streams.outcomes import Emit
from streams.stages.settlement.batching import (
    OpenBatch,
    SettlementDeps,
    member_batches,
    pending_batches,
    take_due_batches,
)
from streams.stages.settlement.submit import settle
from streams.state import PaymentState, Status
from streams.tables import ModelTable

log = logging.getLogger("paystream.streams")

FLUSH_INTERVAL_S = 0.05
SWEEP_INTERVAL_S = 5.0


@dataclass
class Submissions:
    """The batches this worker has taken to send, so the sweeper re-sends only
    batches that nobody here is sending or has just sent (a sent batch stays
    SCORED in the table until its ``chain.submitted`` record is consumed).

    In memory and bounded: after a restart it is empty, and the sweeper re-sends
    what the table says was never submitted (the contract skips sequence numbers
    it has already paid).
    """

    keep_s: float
    taken: dict[int, float] = field(default_factory=dict)  # batch id -> monotonic time

    def take(self, batch_id: int, now_s: float) -> None:
        self.taken[batch_id] = now_s
        for old in [b for b, at in self.taken.items() if at < now_s - self.keep_s]:
            del self.taken[old]

    def failed(self, batch_id: int) -> None:
        """Sending gave up: leave the batch to the sweeper."""
        self.taken.pop(batch_id, None)

    def __contains__(self, batch_id: object) -> bool:
        return batch_id in self.taken


class Scheduler:
    def __init__(
        self,
        deps: SettlementDeps,
        payments: ModelTable[PaymentState],
        connection: Connection,
        send: Callable[[Emit], Awaitable[None]],
        flush_producer: Callable[[], Awaitable[None]],
    ) -> None:
        self.deps = deps  # the settings, the clock and the batching state
        self.settings = deps.settings
        self.payments = payments  # scanned by the sweeper
        self.connection = connection
        self.send = send  # publishes a chain.submitted record
        self.flush_producer = flush_producer  # makes the table writes so far durable
        self.handled = Submissions(keep_s=10 * self.settings.batch_timeout_s)
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(self.settings.settle_concurrency)
        self.sending = 0  # transactions on their way to the chain

    def flush(self) -> None:
        """Send the batches that are due (the flusher's tick)."""
        for batch in take_due_batches(self.deps, self.sending):
            self.spawn(batch)

    def sweep(self) -> None:
        """Send again the batches that were never submitted (the sweeper's tick)."""
        older = self.deps.clock() - timedelta(seconds=self.settings.batch_timeout_s)
        scored = self.payments.where("status", Status.SCORED)
        for batch in pending_batches(scored, older, self.handled):
            log.warning("re-sending batch %s (%d payments)", batch.batch_id, len(batch.members))
            self.spawn(batch)

    def spawn(self, batch: OpenBatch) -> None:
        task = asyncio.ensure_future(self.submit(batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def submit(self, batch: OpenBatch) -> None:
        """Settle one batch and publish its records; on failure, leave it to the sweeper."""
        ids = member_batches(batch)
        for batch_id in ids:
            self.handled.take(batch_id, time.monotonic())
        self.sending += 1
        try:
            async with self.slots:
                await self.connection.ready.wait()
                await self.flush_producer()  # the batch's table entries are durable first
                chain = self.connection.ports.chain
                for emit in await settle(batch, chain, self.settings, self.deps.clock):
                    await self.send(emit)
        except Exception:
            for batch_id in ids:
                self.handled.failed(batch_id)
            log.exception("batch %s: submission failed; the sweeper will retry", batch.batch_id)
        finally:
            self.sending -= 1


def register(app: faust.App, scheduler: Scheduler) -> None:
    """The flusher and the sweeper, as Faust timers."""

    @app.timer(interval=FLUSH_INTERVAL_S)
    async def flush_batches() -> None:
        scheduler.flush()

    @app.timer(interval=SWEEP_INTERVAL_S)
    async def sweep_unsent_batches() -> None:
        scheduler.sweep()

"""The settlement scheduler: when batches leave for the chain, and how many at once.

Two timers drive it. The flusher (every ``FLUSH_INTERVAL_S``) takes the batches
that are full or due from the batching state that the settlement agent fills:
on a chain with a fixed block interval, every batch in the last
``settle_block_lead_ms`` before the next block is due (``blocks.BlockClock``,
learnt from this worker's receipts), else those that waited
``batch_wait_ms``. The sweeper (every ``SWEEP_INTERVAL_S``) re-sends what the
``payments`` table says was batched but never submitted (the worker died, or
sending gave up). Each batch is submitted in its own task, at most
``settle_concurrency`` at a time.

One sender per batch: the sweeper leaves alone every batch that this worker is
sending or has just sent (``Submissions``), that is still in the batching state
(open, or closed and not yet taken: due batches wait there while the chain is
busy), or whose payer's ``fraud.scored`` partition this worker does not actively
own (standby replicas and revoked partitions stay in the table's memory). When
partitions are revoked, their batching state is dropped: their next owner's
sweeper sends it.

All of this state lives in one ``Scheduler``: the tasks in flight, the batches
this worker has taken (``Submissions``) and the count of transactions on their
way to the chain, which the flusher reads to let due batches keep filling while
the chain is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Set
from dataclasses import dataclass, field, replace
from datetime import timedelta

import faust
from faust.types import TP

from schemas.topics import FRAUD_SCORED
from services.errors import InfrastructureError
from services.ports import ChainClient
from streams.connection import Connection
from streams.outcomes import Emit
from streams.stages.settlement.batching import (
    OpenBatch,
    SettlementDeps,
    member_batches,
    member_partition,
    pending_batches,
    take_due_batches,
)
from streams.stages.settlement.blocks import BlockClock
from streams.stages.settlement.submit import settle
from streams.state import PaymentState, Status
from streams.tables import ModelTable

log = logging.getLogger("paystream.streams")

FLUSH_INTERVAL_S = 0.05
SWEEP_INTERVAL_S = 5.0
SENT_MARKS_MAX = 100_000  # batches remembered as just sent (the oldest are forgotten first)

Owned = Callable[[], Collection[int]]  # the fraud.scored partitions this worker actively owns


@dataclass
class Submissions:
    """The batches this worker has taken to send, so the sweeper re-sends only
    batches that nobody here is sending or has just sent.

    A batch is marked from ``take`` until its sending ends, however long that
    takes (``settle()`` may retry for minutes). Once sent, it stays marked
    ``keep_s`` longer: its payments stay SCORED in the table until its
    ``chain.submitted`` records are consumed. When sending gave up, the mark
    goes at once and the sweeper retries.

    In memory and bounded: the marks in flight are as many as the submission
    tasks, and the sent ones expire after ``keep_s`` (at most ``max_sent``,
    oldest dropped first: a forgotten mark costs at most a redundant send, which
    the contract skips). After a restart it is empty, and the sweeper re-sends
    what the table says was never submitted (the contract skips sequence
    numbers it has already paid).
    """

    keep_s: float
    max_sent: int = SENT_MARKS_MAX
    sending: dict[int, int] = field(default_factory=dict)  # batch id -> its senders here
    sent: dict[int, float] = field(default_factory=dict)  # batch id -> monotonic time, oldest first

    def take(self, batch_id: int, now_s: float) -> None:
        self.expire(now_s)
        self.sending[batch_id] = self.sending.get(batch_id, 0) + 1

    def done(self, batch_id: int, now_s: float) -> None:
        """Sent: keep the mark ``keep_s`` longer."""
        self._release(batch_id)
        self.sent.pop(batch_id, None)
        self.sent[batch_id] = now_s
        while len(self.sent) > self.max_sent:
            del self.sent[next(iter(self.sent))]
        self.expire(now_s)

    def failed(self, batch_id: int) -> None:
        """Sending gave up: leave the batch to the sweeper."""
        self._release(batch_id)
        self.sent.pop(batch_id, None)

    def forget(self, batch_id: int) -> None:
        """A reorg removed the batch's transaction: let the sweeper send it
        again at once (unless it is being sent right now)."""
        self.sent.pop(batch_id, None)

    def expire(self, now_s: float) -> None:
        """Forget the batches sent more than ``keep_s`` ago."""
        while self.sent and next(iter(self.sent.values())) < now_s - self.keep_s:
            del self.sent[next(iter(self.sent))]

    def marked(self) -> set[int]:
        return set(self.sending) | set(self.sent)

    def _release(self, batch_id: int) -> None:
        left = self.sending.pop(batch_id, 0) - 1
        if left > 0:
            self.sending[batch_id] = left

    def __contains__(self, batch_id: object) -> bool:
        return batch_id in self.sending or batch_id in self.sent


def batch_partitions(batch: OpenBatch) -> set[int]:
    return {p for m in batch.members if (p := member_partition(m)) is not None}


class Scheduler:
    def __init__(
        self,
        deps: SettlementDeps,
        payments: ModelTable[PaymentState],
        connection: Connection,
        send: Callable[[Emit], Awaitable[None]],
        flush_producer: Callable[[], Awaitable[None]],
        owned: Owned,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deps = deps  # the settings, the clock and the batching state
        self.settings = deps.settings
        self.payments = payments  # the sweeper reads its SCORED payments (its index)
        self.connection = connection
        self.send = send  # publishes a chain.submitted record
        self.flush_producer = flush_producer  # makes the table writes so far durable
        self.owned = owned  # the sweeper looks only at these partitions
        self.monotonic = monotonic
        self.handled = Submissions(keep_s=10 * self.settings.batch_timeout_s)
        self.tasks: set[asyncio.Task[bool]] = set()
        self.slots = asyncio.Semaphore(self.settings.settle_concurrency)
        self.sending = 0  # transactions on their way to the chain
        self.blocks = BlockClock(
            self.settings.block_time_s, self.settings.settle_block_lead_ms / 1000
        )
        self.unknown_partition_logged = False

    def flush(self) -> None:
        """Send the batches that are due (the flusher's tick)."""
        near = self.blocks.near(self.monotonic())
        for batch in take_due_batches(self.deps, self.sending, near):
            self.spawn(batch)

    def mined(self, block: int) -> None:
        """A receipt of this worker's named ``block``: the block clock learns from it."""
        self.blocks.mined(block, self.monotonic())

    def sweep(self) -> None:
        """Send again the batches that were never submitted (the sweeper's tick):
        only those of partitions this worker actively owns, and none that is
        still in the batching state or marked in ``handled``."""
        self.handled.expire(self.monotonic())
        owned = set(self.owned())
        if not owned or self.payments.stale:
            return  # nothing owned, or the index is rebuilt (after a rebalance): next tick
        older = self.deps.clock() - timedelta(seconds=self.settings.batch_timeout_s)
        scored = self.payments.where("status", Status.SCORED)
        mine = [s for s in scored if self._is_owned(s, owned)]
        skip = self.handled.marked() | self.batching()
        for batch in pending_batches(mine, older, skip):
            log.warning("re-sending batch %s (%d payments)", batch.batch_id, len(batch.members))
            self.spawn(batch)
        # Mined, but never confirmed by the listener since: a reorg may have
        # removed the transaction before the listener saw it (submit() sends
        # only what the chain has not paid).
        lost = self.deps.clock() - timedelta(seconds=self.handled.keep_s)
        submitted = self.payments.where("status", Status.SUBMITTED)
        mine = [s for s in submitted if self._is_owned(s, owned)]
        for batch in pending_batches(mine, lost, skip, Status.SUBMITTED):
            log.warning(
                "batch %s: %d payments submitted and not confirmed; checking the chain",
                batch.batch_id,
                len(batch.members),
            )
            self.spawn(batch)

    def _is_owned(self, state: PaymentState, owned: Set[int]) -> bool:
        if state.partition is None:
            if not self.unknown_partition_logged:
                self.unknown_partition_logged = True
                log.warning(
                    "payment %s is SCORED with no partition recorded: the sweeper "
                    "leaves such payments alone (logged once)",
                    state.payment_id,
                )
            return False
        return state.partition in owned

    def batching(self) -> set[int]:
        """The batch ids in the batching state (open, or closed and not taken)."""
        batches = self.deps.batches
        ids: set[int] = set()
        for batch in [*batches.open.values(), *batches.closed]:
            ids |= member_batches(batch)
        return ids

    def revoke(self, partitions: Set[int]) -> None:
        """Drop the batching state of partitions this worker no longer owns;
        their next owner's sweeper sends it. Submissions in flight go on (a
        transaction cannot be unsent; the contract skips what is paid twice)."""
        batches = self.deps.batches
        dropped = [batches.open.pop(p) for p in list(batches.open) if p in partitions]
        kept: list[OpenBatch] = []
        for batch in batches.closed:
            (dropped if batch_partitions(batch) & partitions else kept).append(batch)
        batches.closed = kept
        if dropped:
            log.info(
                "partitions %s revoked: dropped %d unsent batches",
                sorted(partitions),
                len(dropped),
            )

    def spawn(self, batch: OpenBatch) -> None:
        """Submit a batch in its own task. Its marks and the count of transactions
        on their way are taken here, before the task first runs, so that no tick
        in between sees the batch neither in the batching state nor taken."""
        ids = member_batches(batch)
        now_s = self.monotonic()
        for batch_id in ids:
            self.handled.take(batch_id, now_s)
        self.sending += 1
        task = asyncio.ensure_future(self.submit(batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda done: self.finished(ids, done))

    def finished(self, ids: Set[int], task: asyncio.Task[bool]) -> None:
        """The submission ended: keep the marks a while if it was sent, drop
        them if it failed or was cancelled (the sweeper retries)."""
        self.sending -= 1
        sent = not task.cancelled() and task.exception() is None and task.result()
        now_s = self.monotonic()
        for batch_id in ids:
            if sent:
                self.handled.done(batch_id, now_s)
            else:
                self.handled.failed(batch_id)

    async def submit(self, batch: OpenBatch) -> bool:
        """Settle one batch and publish its records; False when it failed (the
        sweeper will retry)."""
        try:
            async with self.slots:
                await self.connection.ready.wait()
                await self.flush_producer()  # the batch's table entries are durable first
                ports = self.connection.ports
                batch = await unpaid(batch, ports.chain)
                if not batch.members:
                    return True
                emits = await settle(batch, ports, self.settings, self.deps.clock, self.mined)
                for emit in emits:
                    await self.send(emit)
        except InfrastructureError as exc:  # deferred: its payments stay held
            log.warning("batch %s: %s; the sweeper will retry", batch.batch_id, exc)
            return False
        except Exception:
            log.exception("batch %s: submission failed; the sweeper will retry", batch.batch_id)
            return False
        return True


async def unpaid(batch: OpenBatch, chain: ChainClient) -> OpenBatch:
    """The batch without its SUBMITTED members the chain has paid (their
    confirmation is on its way); the others are sent again under their
    sequence numbers (the contract pays each once)."""
    submitted = [m for m in batch.members if m.status == Status.SUBMITTED]
    if not submitted:
        return batch
    lost = [m for m in submitted if m.sequence is None or not await chain.is_settled(m.sequence)]
    if lost:
        log.warning(
            "batch %s: %d of %d submitted payments are not on chain (a reorg?); sending them again",
            batch.batch_id,
            len(lost),
            len(submitted),
        )
    others = [m for m in batch.members if m.status != Status.SUBMITTED]
    return replace(batch, members=others + lost)


def guarded(what: str, step: Callable[[], None]) -> None:
    """Run a timer's or a signal's step, logging an unexpected error instead of
    letting it escape (Faust crashes the worker when a timer raises)."""
    try:
        step()
    except Exception:
        log.exception("%s: unexpected error; it runs again next time", what)


def active_partitions(app: faust.App, topic: str) -> Owned:
    """The partitions of ``topic`` in this worker's active assignment (not its
    standby replicas); none while a rebalance or table recovery is under way."""

    def owned() -> frozenset[int]:
        if app.rebalancing or app.in_recovery:
            return frozenset()
        actives = app.assignor.assigned_actives()
        return frozenset(tp.partition for tp in actives if tp.topic == topic)

    return owned


def on_revoked(scheduler: Scheduler, topic: str) -> Callable[..., Awaitable[None]]:
    """The receiver of Faust's ``on_partitions_revoked`` signal."""

    async def drop_revoked(_app: object, revoked: Set[TP], **_: object) -> None:
        guarded(
            "partitions revoked",
            lambda: scheduler.revoke({tp.partition for tp in revoked if tp.topic == topic}),
        )

    return drop_revoked


def register(app: faust.App, scheduler: Scheduler) -> None:
    """The flusher and the sweeper, as Faust timers, and the revocation handler."""

    @app.timer(interval=FLUSH_INTERVAL_S)
    async def flush_batches() -> None:
        guarded("flusher", scheduler.flush)

    @app.timer(interval=SWEEP_INTERVAL_S)
    async def sweep_unsent_batches() -> None:
        guarded("sweeper", scheduler.sweep)

    app.on_partitions_revoked.connect(on_revoked(scheduler, scheduler.settings.topic(FRAUD_SCORED)))

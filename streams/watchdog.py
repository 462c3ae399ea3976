"""The stalled-partition watchdog.

After some rebalances Faust leaves one partition it was given unfetched
(faust-streaming issue #629): records wait on it, its agent sits idle, and
nothing reports a problem. Payments on it would never get an outcome.

The agent shell tells ``Progress`` which records reach each agent. Every
``CHECK_S`` the watchdog compares, for each partition of an agent's topic in this
worker's active assignment, the group's committed offset with the partition's
end offset. A partition is *stalled* when all of these hold:

- it has records after the committed offset (never fetched, or skipped by
  Faust around a rebalance: ``streams/commits.py`` keeps the commit behind them);
- no record of it reached the agent for ``stall_s`` (counted from the end of the
  last rebalance at the earliest);
- its agent is idle: no record of any partition for ``IDLE_S`` and none in hand.

An idle agent rules out back-pressure (a full stream buffer keeps its agent
busy), a slow chain (the settlement agent has read its records; the batches wait
in the scheduler) and a rebalance or table recovery (no check runs then).

On a stalled partition the worker logs what Faust and aiokafka hold for it and
first repairs it in place (``refetch``): the partition is given back to Faust's
fetcher (Faust's own pause list is how faust-streaming #629 leaves it) and
sought back to the group's committed offset, so the records Faust skipped are
read again (handlers are idempotent). A partition that stalls again within
``stall_s`` of its repair, with nothing of it reaching its agent, stops the
worker with exit code 72 (``EXIT_STALLED``) so that its supervisor restarts it:
the restarted worker rejoins the group and gets a fresh assignment. A restart
alone was not enough: a worker restarted after a SIGKILL skipped the records
of the partitions it was given during its start-up again and again, four
restarts in a row in one fault-suite run.

Table recovery can stall the same way: after a rebalance that made standby
changelog partitions active, Faust's recovery waited three minutes for
records of partitions it never fetched (a CI fault run), and a worker in
recovery processes nothing. A recovery whose count of changelog records left
to read has not changed for ``stall_s`` stops the worker with exit code 72
too (``stuck_recovery``); a long recovery that keeps reading is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import faust
from faust.types import TP

from streams.progress import Partition, Progress
from streams.runtime import die

log = logging.getLogger("paystream.streams")

EXIT_STALLED = 72
CHECK_S = 5.0
SUMMARY_EVERY = 12  # checks between two summary lines (one a minute)
IDLE_S = 10.0
KAFKA_TIMEOUT_S = 10.0


Offsets = Callable[[list[Partition]], Awaitable[Mapping[Partition, tuple[int, int]]]]
# Read these partitions again from these offsets (``refetch`` on the worker).
Repair = Callable[[Mapping[Partition, int]], Awaitable[None]]


class Watchdog:
    """Finds stalled partitions of ``topics`` on this worker (see the module).

    ``offsets``: per partition, the group's committed offset and the end offset,
    read from Kafka with a client of their own, not through Faust's consumer
    (its thread may be what is stuck). Not the consumer's fetch position: a
    partition left unfetched may have its records stuck in the consumer's
    buffer."""

    def __init__(
        self,
        app: faust.App,
        topics: Collection[str],
        progress: Progress,
        offsets: Offsets,
        repair: Repair | None = None,
    ) -> None:
        self.app = app
        self.repair = repair
        self.repaired: dict[Partition, float] = {}  # this generation: when
        self.topics = frozenset(topics)
        self.progress = progress
        self.offsets = offsets
        self.generation: int | None = None
        self.since = progress.clock()  # end of the last rebalance seen
        self.warned: set[Partition] = set()  # lagging behind a busy agent, logged
        self.unsettled_since: float | None = None  # a rebalance or recovery under way
        self.unsettled_warned = False  # one that lasts, logged
        self.reading: asyncio.Future[Mapping[Partition, tuple[int, int]]] | None = None
        self.checks = 0  # completed checks, for the summary line
        self.recovering: tuple[int, float] | None = None  # records left, since when

    def stuck_recovery(self) -> str | None:
        """Why the worker must restart: its table recovery has had the same
        number of changelog records left to read for ``stall_s``. None while it
        reads, or when no recovery is under way."""
        app = self.app
        if not app.in_recovery or app.should_stop:
            self.recovering = None
            return None
        tables: Any = app.tables  # Faust's TableManager (its type does not name ``recovery``)
        left = int(tables.recovery.active_remaining_total())
        now = self.progress.clock()
        if self.recovering is None or self.recovering[0] != left:
            self.recovering = (left, now)
            return None
        waited = now - self.recovering[1]
        if left <= 0 or waited < self.progress.stall_s:
            return None
        return f"table recovery read nothing for {waited:.0f} s with {left} changelog records left"

    def _settled(self) -> bool:
        """False (and the window restarts) while or just after a rebalance."""
        app = self.app
        if app.should_stop:  # stopping: the consumer may be gone already
            return False
        generation = app.consumer_generation_id
        busy = app.rebalancing or app.in_recovery
        now = self.progress.clock()
        if busy:
            began = self.unsettled_since = self.unsettled_since or now
            if now - began >= self.progress.stall_s and not self.unsettled_warned:
                self.unsettled_warned = True  # Faust itself may be stuck: say so, once
                log.warning(
                    "partition watchdog: rebalancing %s, in recovery %s for %.0f s: not checking",
                    app.rebalancing,
                    app.in_recovery,
                    now - began,
                )
        else:
            self.unsettled_since = None
        if busy or generation != self.generation:
            self.generation = None if busy else generation
            self.since = self.progress.clock()
            self.warned.clear()
            self.repaired.clear()
            if not busy:
                self.unsettled_warned = False
                log.info("partition watchdog: watching generation %s", generation)
            return False
        return True

    async def check(self) -> list[Partition]:
        """One check; the stalled partitions (logged with what Faust holds).
        A partition that lags behind a busy agent is logged once per window."""
        if not self._settled() or self.progress.clock() - self.since < self.progress.stall_s:
            return []  # nothing can have stalled yet
        progress, since = self.progress, self.since
        actives = [
            (tp.topic, tp.partition)
            for tp in self.app.assignor.assigned_actives()
            if tp.topic in self.topics
        ]
        if not actives:
            return []
        if self.reading is not None and not self.reading.done():
            return []  # the last read has not come back: no pile of waiting reads
        self.reading = asyncio.ensure_future(self.offsets(actives))
        read = await asyncio.wait_for(asyncio.shield(self.reading), KAFKA_TIMEOUT_S)
        if not self._settled():  # a rebalance began while Kafka answered
            return []
        ends = {p: end for p, (_, end) in read.items()}
        committed = {p: start for p, (start, _) in read.items()}
        lagging = progress.lagging(ends, committed, since)
        self.checks += 1
        if self.checks % SUMMARY_EVERY == 1:
            behind = {p: end - committed[p] for p, end in ends.items() if end > committed[p]}
            log.info(
                "partition watchdog: %d partitions, %d behind their committed offset %s",
                len(ends),
                len(behind),
                dict(sorted(behind.items())[:8]),
            )
        stalled = [p for p in lagging if progress.idle(p[0], since, IDLE_S)]
        for topic, partition in stalled:
            log.error(
                "partition %s[%s] stalled: %s records wait, none reached its agent for %.0f s; %s",
                topic,
                partition,
                lagging[(topic, partition)],
                progress.stall_s,
                describe(self.app, TP(topic, partition)),
            )
        for p in lagging.keys() - set(stalled) - self.warned:
            self.warned.add(p)
            log.warning(
                "partition %s[%s]: %s records wait, none reached its agent for %.0f s; "
                "the agent is busy (%s)",
                *p,
                lagging[p],
                progress.stall_s,
                progress.agent_state(p[0]),
            )
        return await self._repaired_or_fatal(stalled, committed)

    async def _repaired_or_fatal(
        self, stalled: list[Partition], committed: Mapping[Partition, int]
    ) -> list[Partition]:
        """Repair the partitions that stalled for the first time since their last
        repair (or ever, this generation); the ones a repair did not help within
        ``stall_s`` are returned: they stop the worker."""
        now, progress = self.progress.clock(), self.progress
        for p, at in list(self.repaired.items()):
            if progress.seen.get(p, (0, 0.0))[1] > at:  # read again since: repaired
                del self.repaired[p]
        if self.repair is None:
            return stalled
        due = [
            p for p in stalled if p in self.repaired and now - self.repaired[p] >= progress.stall_s
        ]
        fresh = {p: committed[p] for p in stalled if p not in self.repaired}
        if not fresh:
            return due
        log.warning(
            "partition watchdog: reading %s again from the committed offsets %s",
            sorted(fresh),
            [fresh[p] for p in sorted(fresh)],
        )
        try:
            await self.repair(fresh)
        except Exception:  # a repair that fails is a stall: restart
            log.exception("partition watchdog: the repair failed")
            return stalled
        self.repaired.update(dict.fromkeys(fresh, now))
        return due


async def refetch(app: Any, partitions: Mapping[Partition, int]) -> None:
    """Give ``partitions`` back to Faust's fetcher (off its pause list; the
    watchdog repairs only partitions whose agent is idle, so none is paused for
    a full stream buffer) and seek them to ``partitions``' offsets, the group's
    committed ones, with Faust's read offsets moved back too: Faust delivers
    their records again (``FastConsumer.read_again``)."""
    consumer = app.consumer
    tps = {TP(topic, partition): offset for (topic, partition), offset in partitions.items()}
    consumer.resume_partitions(set(tps))
    await consumer.read_again(tps)


def describe(app: Any, tp: TP) -> str:
    """What Faust and aiokafka hold for ``tp`` (private state, for the diagnosis
    only: any part that cannot be read is left out)."""
    parts = []
    consumer: Any = getattr(app, "consumer", None)
    for name in ("_active_partitions", "_paused_partitions", "_buffered_partitions"):
        held = getattr(consumer, name, None)
        if held is not None:
            parts.append(f"in {name.strip('_')}: {tp in held}")
    try:
        aio = consumer._thread._consumer
        fetcher = aio._fetcher
        state = aio._subscription.subscription.assignment.state_value(tp)
        where = state.position if state.has_valid_position else None
        parts.append(f"aiokafka paused: {state.paused}, position: {where}")
        parts.append(f"records buffered in aiokafka: {tp in fetcher._records}")
    except Exception as exc:  # noqa: BLE001 - a diagnosis never fails the check
        parts.append(f"aiokafka state unreadable ({type(exc).__name__})")
    return "; ".join(parts)


def register(app: faust.App, watchdog: Watchdog) -> None:
    """The watchdog's timer; a stalled partition or recovery stops the worker (exit 72)."""

    @app.timer(interval=CHECK_S)
    async def watch_partitions() -> None:
        try:
            stuck = watchdog.stuck_recovery()
            stalled = [] if stuck else await watchdog.check()
        except Exception:  # a timer must not raise; the next check runs
            log.warning("partition watchdog: check failed; it runs again", exc_info=True)
            return
        if stuck:
            die(EXIT_STALLED, f"stopping: {stuck}; restart to rejoin")
        if stalled:
            die(EXIT_STALLED, f"stopping: partitions {sorted(stalled)} stalled; restart to rejoin")

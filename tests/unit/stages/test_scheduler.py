"""The settlement scheduler without a running Faust: the flusher, the sweeper,
one batch's submission over the in-memory chain, and dropping the batches of
revoked partitions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

import faust
import pytest
from faust.types import TP

from schemas.onchain import BatchReceipt, PaymentRecord
from schemas.payments import BatchSubmitted
from schemas.sequence import partition_of
from schemas.topics import CHAIN_SUBMITTED, FRAUD_SCORED
from services.ports import WorkerPorts
from streams.connection import Connection
from streams.outcomes import Emit
from streams.scheduler import (
    Scheduler,
    active_partitions,
    batch_partitions,
    guarded,
    register,
)
from streams.stages.fraud import handle_request
from streams.stages.settlement.batching import OpenBatch, handle_scored
from streams.stages.submitted import handle_submitted
from streams.state import Balance, PaymentState, Status
from streams.tables import ModelTable
from tests.support.fakes import (
    FakeChain,
    MemoryClaimStore,
    MemoryCursorStore,
    MemoryLedgerStore,
    MemoryMerchants,
)
from tests.unit.stages.conftest import World, raw, request, sent_of


@dataclass
class WatchedChain(FakeChain):
    """Records each settlement, and how many transactions the scheduler counted
    as on their way at that moment."""

    calls: list[str] = field(default_factory=list)
    scheduler: Scheduler | None = None

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        sending = self.scheduler.sending if self.scheduler else None
        self.calls.append(f"settle {batch_id} sending={sending}")
        return await super().settle_batch(batch_id, payments)

    def settles(self) -> list[str]:
        return [c.split(" sending")[0] for c in self.calls if c.startswith("settle")]


class BrokenChain(WatchedChain):
    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        raise RuntimeError("a bug in the client")


@dataclass
class SlowChain(WatchedChain):
    """Settles only once ``release`` is set (a settle that retries for minutes)."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        self.entered.set()
        await self.release.wait()
        return await super().settle_batch(batch_id, payments)


class Monotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


class Harness:
    """A scheduler over the world's batching state, the chain and a recording
    producer; it owns the partitions in ``owned`` and reads a monotonic clock
    the test moves."""

    def __init__(self, world: World, chain: WatchedChain) -> None:
        self.world = world
        self.chain = chain
        self.claims = MemoryClaimStore()
        self.sent: list[Emit] = []
        self.owned: set[int] = set(range(world.settings.kafka_partitions))
        self.monotonic = Monotonic()
        self.connection = Connection(self._connect)
        self.scheduler = Scheduler(
            world.settlement,
            self.table(),
            self.connection,
            self._send,
            self._flush,
            lambda: self.owned,
            self.monotonic,
        )
        chain.scheduler = self.scheduler

    def table(self) -> ModelTable[PaymentState]:
        """The payments table as Faust holds it (JSON bytes), for the sweeper's scan."""
        stored = {k: v.model_dump_json().encode() for k, v in self.world.payments.items()}
        return ModelTable(stored, PaymentState)

    def sweep_later(self) -> None:
        """Sweep once the batches so far are older than ``batch_timeout_s``."""
        self.world.clock.advance(int(self.world.settings.batch_timeout_s * 1000) + 1)
        self.scheduler.payments = self.table()
        self.scheduler.sweep()

    async def _connect(self) -> WorkerPorts:
        return WorkerPorts(
            chain=self.chain,
            cursors=MemoryCursorStore(),
            claims=self.claims,
            merchants=MemoryMerchants(),
            ledger=MemoryLedgerStore(),
        )

    async def _flush(self) -> None:
        self.chain.calls.append("flush")

    async def _send(self, emit: Emit) -> None:
        self.chain.calls.append(f"send {emit.topic}")
        self.sent.append(emit)

    async def settled(self) -> None:
        """Wait for every spawned submission."""
        await asyncio.gather(*self.scheduler.tasks)


def _placed(state: PaymentState) -> PaymentState:
    """The state with its partition recorded, as batching records it."""
    if state.partition is not None or state.sequence is None:
        return state
    return state.model_copy(update={"partition": partition_of(state.sequence)})


def _batch(world: World, count: int, partition: int) -> None:
    world.balances.setdefault("alice", Balance(available=10**9))
    for offset in range(count):
        (scored,) = handle_request(raw(request("alice")), "alice", world.fraud).emits
        handle_scored(scored.payload(), partition, offset, world.settlement)
    for key, state in world.payments.items():
        world.payments[key] = _placed(state)
    batches = world.settlement.batches
    for batch in [*batches.open.values(), *batches.closed]:
        batch.members[:] = [_placed(m) for m in batch.members]


def _forget_batching(world: World) -> None:
    """The batching state is lost (a restart, or the partitions were revoked)."""
    world.settlement.batches.open.clear()
    world.settlement.batches.closed.clear()


async def test_a_due_batch_waits_for_the_ports_then_is_made_durable_before_it_is_settled(
    world: World,
) -> None:
    harness = Harness(world, WatchedChain())
    _batch(world, 2, partition=1)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.flush()
    await asyncio.sleep(0)
    assert harness.chain.calls == [] and harness.scheduler.sending == 1  # not connected yet
    await harness.connection.open()
    await harness.settled()
    batch_id = 1 << 40
    assert harness.chain.calls == [
        "flush",
        f"settle {batch_id} sending=1",
        f"send {CHAIN_SUBMITTED}",  # one record: the batch's two payments share a partition
    ]
    outcomes = {BatchSubmitted.model_validate_json(e.payload()).outcome for e in harness.sent}
    assert outcomes == {"SUBMITTED"}
    assert harness.scheduler.sending == 0 and harness.scheduler.tasks == set()
    assert batch_id in harness.scheduler.handled  # the sweeper leaves it alone


async def test_a_failed_submission_is_left_to_the_sweeper(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(world, BrokenChain())
    _batch(world, 1, partition=2)
    world.clock.advance(world.settings.batch_wait_ms)
    await harness.connection.open()
    harness.scheduler.flush()
    with caplog.at_level(logging.ERROR, logger="paystream.streams"):
        await harness.settled()
    assert harness.chain.calls == ["flush"] and harness.sent == []
    assert 2 << 40 not in harness.scheduler.handled
    assert harness.scheduler.sending == 0
    assert f"batch {2 << 40}: submission failed; the sweeper will retry" in caplog.text


async def test_due_batches_wait_while_the_chain_is_busy(world: World) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 1, partition=3)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.sending = world.settings.settle_inflight_max
    harness.scheduler.flush()
    assert harness.scheduler.tasks == set()
    harness.scheduler.sending = 0
    harness.scheduler.flush()
    await harness.settled()
    assert harness.chain.calls[1] == f"settle {3 << 40} sending=1"


async def test_the_sweeper_resends_only_old_batches_nobody_here_is_sending(world: World) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 4, partition=0)  # a full batch of 3 (taken below) and an open one of 1
    (taken,) = world.settlement.batches.closed
    _forget_batching(world)  # as after the partition came back: only the table knows
    harness.scheduler.handled.take(taken.batch_id, harness.monotonic())
    harness.scheduler.payments = harness.table()
    harness.scheduler.sweep()
    assert harness.scheduler.tasks == set()  # too recent: may still be on its way
    harness.sweep_later()
    await harness.settled()
    assert harness.chain.settles() == ["settle 3"]
    assert len(harness.sent) == 1


async def test_the_sweeper_leaves_alone_the_batches_still_in_memory(world: World) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 4, partition=0)  # closed: batch 0 (full); open: batch 3
    _batch(world, 1, partition=1)  # open: batch 1 << 40
    harness.sweep_later()  # all three are old enough, and all are in memory
    assert harness.scheduler.tasks == set()
    busy = world.settings.settle_inflight_max
    harness.scheduler.sending = busy  # the chain is busy: due batches keep waiting
    harness.scheduler.flush()  # takes the full batch only
    harness.sweep_later()
    await harness.settled()
    assert harness.chain.settles() == ["settle 0"]
    assert set(world.settlement.batches.open) == {0, 1}
    harness.scheduler.sending = 0
    _forget_batching(world)
    harness.sweep_later()  # now only the table knows them
    await harness.settled()
    assert sorted(harness.chain.settles()) == ["settle 0", "settle 1099511627776", "settle 3"]


async def test_the_sweeper_looks_only_at_partitions_this_worker_owns(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    for partition in (0, 1, 2, 3):
        _batch(world, 1, partition)
    _forget_batching(world)
    unplaced = next(k for k, s in world.payments.items() if s.partition == 3)
    world.payments[unplaced] = world.payments[unplaced].model_copy(update={"partition": None})
    harness.owned = set()  # e.g. during a rebalance
    harness.sweep_later()
    assert harness.scheduler.tasks == set()
    harness.owned = {1, 3}  # 0 and 2 are standby replicas or revoked here
    with caplog.at_level(logging.WARNING, logger="paystream.streams"):
        harness.sweep_later()
        await harness.settled()
        harness.scheduler.handled.sent.clear()
        harness.sweep_later()
        await harness.settled()
    assert harness.chain.settles() == [f"settle {1 << 40}", f"settle {1 << 40}"]
    assert caplog.text.count("SCORED with no partition recorded") == 1


async def test_a_batch_stays_marked_while_its_settle_outlasts_keep_s(world: World) -> None:
    chain = SlowChain()
    harness = Harness(world, chain)
    await harness.connection.open()
    keep_s = harness.scheduler.handled.keep_s
    _batch(world, 1, partition=1)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.flush()
    await chain.entered.wait()  # settle() is under way, and takes long
    harness.monotonic.now_s += 3 * keep_s
    harness.scheduler.handled.take(7, harness.monotonic())  # another batch taken meanwhile
    harness.sweep_later()
    assert len(harness.scheduler.tasks) == 1  # no second sender
    assert 1 << 40 in harness.scheduler.handled
    chain.release.set()
    await harness.settled()
    harness.monotonic.now_s += keep_s - 1  # sent: its chain.submitted records are on the way
    harness.sweep_later()
    assert harness.scheduler.tasks == set()
    harness.monotonic.now_s += 2  # long enough: the table says it was never submitted
    harness.sweep_later()
    await harness.settled()
    assert chain.settles() == [f"settle {1 << 40}", f"settle {1 << 40}"]


async def test_revocation_drops_the_batches_of_revoked_partitions_only(world: World) -> None:
    harness = Harness(world, WatchedChain())
    for partition in (0, 1):
        _batch(world, 4, partition)  # per partition: a closed batch of 3 and an open one of 1
    _batch(world, 1, partition=2)
    app = faust.App("test-scheduler", broker="kafka://localhost:1", store="memory://")
    register(app, harness.scheduler)
    topic = world.settings.topic(FRAUD_SCORED)
    await app.on_partitions_revoked.send({TP(topic, 0), TP(topic, 2), TP("other", 1)})
    batches = world.settlement.batches
    assert set(batches.open) == {1}
    assert [b.batch_id for b in batches.closed] == [1 << 40]


def test_a_batch_belongs_to_its_members_partitions(world: World) -> None:
    _batch(world, 1, partition=5)
    (member,) = world.settlement.batches.open[5].members
    unplaced = member.model_copy(update={"partition": None})
    assert batch_partitions(OpenBatch(9, world.clock(), [member])) == {5}
    assert batch_partitions(OpenBatch(9, world.clock(), [unplaced])) == {5}  # from its batch id


async def test_errors_in_the_timers_and_the_revocation_handler_are_logged_not_raised(
    world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(world, WatchedChain())
    app = faust.App("test-scheduler", broker="kafka://localhost:1", store="memory://")
    register(app, harness.scheduler)

    def owned() -> set[int]:
        raise RuntimeError("a bug")

    def revoke(_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.scheduler, "owned", owned)
    monkeypatch.setattr(harness.scheduler, "revoke", revoke)
    with caplog.at_level(logging.ERROR, logger="paystream.streams"):
        guarded("sweeper", harness.scheduler.sweep)
        await app.on_partitions_revoked.send({TP(world.settings.topic(FRAUD_SCORED), 0)})
    assert "sweeper: unexpected error" in caplog.text
    assert "partitions revoked: unexpected error" in caplog.text


def test_the_owned_partitions_are_the_active_ones_of_the_topic_outside_rebalances() -> None:
    actives = {TP("p.fraud.scored", 1), TP("p.fraud.scored", 4), TP("p.chain.events", 2)}
    fake = SimpleNamespace(
        rebalancing=False,
        in_recovery=False,
        assignor=SimpleNamespace(assigned_actives=lambda: actives),
    )
    owned = active_partitions(cast(faust.App, fake), "p.fraud.scored")
    assert owned() == {1, 4}
    fake.rebalancing = True
    assert owned() == set()
    fake.rebalancing, fake.in_recovery = False, True
    assert owned() == set()


async def test_submitted_payments_the_chain_lost_are_sent_again_and_paid_ones_are_not(
    world: World,
) -> None:
    """Mined, then removed by a reorg before the listener saw them: SUBMITTED
    for longer than keep_s with the chain not showing them paid, they are sent
    again under their sequences; those the chain shows paid are left to the
    listener."""
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 3, partition=0)
    harness.scheduler.flush()
    await harness.settled()
    for emit in harness.sent:
        handle_submitted(emit.payload(), world.submitted)
    sequences = sorted(s.sequence or 0 for s in world.payments.values())
    assert {s.status for s in world.payments.values()} == {Status.SUBMITTED}
    harness.chain.reorg(1)  # the batch's block is gone, before any confirmation
    harness.chain.settled.discard(sequences[0])  # (the fake's own record of it too)
    harness.chain.settled.discard(sequences[1])
    harness.sweep_later()
    assert harness.scheduler.tasks == set()  # marked as sent: too recent to doubt
    world.clock.advance(int(harness.scheduler.handled.keep_s * 1000))
    harness.monotonic.now_s += harness.scheduler.handled.keep_s + 1
    harness.sweep_later()
    await harness.settled()
    assert harness.chain.settles() == ["settle 0", "settle 0"]
    again = sent_of(harness.sent[1:])
    assert sorted(r.sequence or 0 for r in again) == sequences[:2]  # the paid one is not sent
    assert sorted(harness.chain.settled) == sequences


async def test_receipts_teach_the_flusher_when_blocks_come_and_due_batches_wait_for_one(
    world: World,
) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 1, partition=1)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.flush()  # no receipt yet: the due batch goes
    await harness.settled()
    (block,) = harness.scheduler.blocks.seen  # its receipt's block, seen at 1000.0
    assert harness.scheduler.blocks.seen[block] == 1000.0
    interval = world.settings.block_time_s
    _batch(world, 1, partition=2)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.monotonic.now_s = 1000.0 + interval / 2  # due, but the next block is far
    harness.scheduler.flush()
    assert harness.scheduler.sending == 0 and 2 in world.settlement.batches.open
    harness.monotonic.now_s = 1000.0 + interval - world.settings.settle_block_lead_ms / 2000
    harness.scheduler.flush()
    await harness.settled()
    assert len(harness.chain.settles()) == 2 and world.settlement.batches.open == {}

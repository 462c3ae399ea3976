"""The chain listener over the in-memory chain: confirmations, cursor, reorgs."""

from __future__ import annotations

import math
import uuid

from eth_account import Account

from schemas.chain import (
    CHAIN_EVENT,
    ChainEvents,
    EventOrphaned,
    ReconciliationAlert,
    SettlementConfirmed,
    SettlementFinal,
)
from schemas.cursor import Cursor
from schemas.onchain import (
    BlockLink,
    ChainEvent,
    DepositEvent,
    LogRef,
    PaymentRecord,
    account_ref,
)
from schemas.partitioning import partition_for
from schemas.sequence import partition_of, sequence_of
from schemas.topics import CHAIN_EVENTS, RECONCILIATION_ALERTS
from services.metrics.catalogue import Metrics
from services.ports import ClaimRequest, WorkerPorts
from services.settings import Settings
from streams.connection import Connection
from streams.listener import ChainListener, per_partition
from streams.listening import HALT_CHECK_S, LEADING_S, Listening
from streams.outcomes import Emit
from streams.runtime import DlqGuard
from tests.support.fakes import (
    FakeChain,
    MemoryClaimStore,
    MemoryCursorStore,
    MemoryLedgerStore,
    MemoryMerchants,
)


async def test_settlements_wait_for_confirmations_then_go_to_their_partition() -> None:
    chain, claims = FakeChain(), MemoryClaimStore()
    listener = ChainListener(chain, claims, Settings(confirmations_min=2), start_block=1)
    ask = ClaimRequest(uuid.uuid4(), "alice", "d1", 5)
    sequence = (await claims.claim([ask]))[ask.payment_id].sequence
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, sequence, 42)])

    first = await listener.poll(None)
    assert first.emits == []  # one confirmation only
    chain.mine_empty()
    second = await listener.poll(first.cursor)
    (emit,) = second.emits
    record = CHAIN_EVENT.validate_json(emit.payload())
    assert isinstance(record, SettlementConfirmed) and record.sequence == sequence
    assert (record.payment_id, record.payer_account) == (ask.payment_id, "alice")  # its claim
    assert emit.partition == partition_of(sequence) == 5
    assert (await listener.poll(second.cursor)).emits == []  # nothing twice


async def test_a_shallow_reorg_settles_nothing_of_the_orphaned_block() -> None:
    chain = FakeChain()
    listener = ChainListener(
        chain, MemoryClaimStore(), Settings(confirmations_min=2), start_block=1
    )
    chain.mine_empty()
    cursor = (await listener.poll(None)).cursor
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 1, 42)])
    poll = await listener.poll(cursor)
    assert poll.emits == []
    chain.reorg(1)
    chain.mine_empty(3)
    later = await listener.poll(poll.cursor)
    assert later.emits == [] and later.reorged_from is None


async def test_a_deep_reorg_reports_what_it_removed() -> None:
    chain = FakeChain()
    listener = ChainListener(
        chain, MemoryClaimStore(), Settings(confirmations_min=1), start_block=1
    )
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 9, 42)])
    poll = await listener.poll(None)
    assert len(poll.emits) == 1
    chain.reorg(1)
    after = await listener.poll(poll.cursor)
    assert after.reorged_from == 1
    (orphan,) = after.emits
    record = CHAIN_EVENT.validate_json(orphan.payload())
    assert isinstance(record, EventOrphaned) and record.sequence == 9


LOG = LogRef(1, "0x" + "b1" * 32, "0x" + "a1" * 32, 0)


class ReorgAfterReading(FakeChain):
    """The chain reorganises right after the listener has read the logs."""

    async def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        found = await super().events(from_block, to_block)
        if found:
            self.reorg(1)
        return found


async def test_logs_of_a_block_replaced_while_they_were_read_are_never_emitted() -> None:
    """The chain reorganises right after the logs were read: the block's hash
    is no longer the one the logs carry, so the poll emits and records
    nothing, and the next one reads the new chain (where the block is empty)."""
    chain = ReorgAfterReading()
    listener = ChainListener(
        chain, MemoryClaimStore(), Settings(confirmations_min=1), start_block=1
    )
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 9, 42)])
    poll = await listener.poll(None)
    assert poll.emits == [] and poll.cursor is not None and poll.cursor.last_block == 0
    after = await listener.poll(poll.cursor)
    assert after.emits == [] and after.cursor is not None and after.cursor.last_block == 1
    block = await chain.block(1)
    assert block is not None and after.cursor.recent[-1].hash == block.hash


async def test_an_event_the_engine_cannot_represent_is_an_alert_and_the_listener_moves_on() -> None:
    chain = FakeChain()
    listener = ChainListener(chain, MemoryClaimStore(), Settings(), start_block=1)
    huge = DepositEvent("alice", account_ref("alice"), Account.create().address, 2**100, LOG)
    chain.blocks.append((LOG.block_hash, [huge]))
    await chain.settle_batch(2, [PaymentRecord(Account.create().address, 5, sequence_of(9, 1), 1)])
    poll = await listener.poll(None)
    alerts = [ReconciliationAlert.model_validate_json(e.payload()) for e in poll.emits]
    assert [a.kind for a in alerts] == ["UNREPRESENTABLE", "UNREPRESENTABLE"]
    assert "amount" in alerts[0].detail and "partition 9, of 8" in alerts[1].detail
    assert {e.topic for e in poll.emits} == {RECONCILIATION_ALERTS}
    assert poll.cursor is not None and poll.cursor.last_block == 2  # past both
    assert (await listener.poll(poll.cursor)).emits == []


def test_dlq_guard_trips_only_when_nearly_everything_is_dead() -> None:
    guard = DlqGuard(window=10, max_ratio=0.9)
    assert not any(guard.record(dead=i % 2 == 0) for i in range(50))
    assert [guard.record(dead=True) for _ in range(10)][-1] is True


async def test_the_cursor_moves_only_once_the_polled_records_are_in_kafka() -> None:
    """A leader killed between sending and saving re-emits, never skips (audit
    finding 3): the producer is flushed before the cursor is saved."""
    chain, cursors = FakeChain(), MemoryCursorStore()
    settings = Settings(confirmations_min=1, listener_start_block=1)
    calls: list[str] = []

    class Saving(MemoryCursorStore):
        async def save(self, cursor: Cursor) -> None:
            calls.append("save")
            await cursors.save(cursor)

    async def connect() -> WorkerPorts:
        return WorkerPorts(
            chain, Saving(), MemoryClaimStore(), MemoryMerchants(), MemoryLedgerStore()
        )

    async def send(emit: Emit) -> None:
        calls.append("send")

    async def flush() -> None:
        calls.append("flush")

    connection = Connection(connect)
    await connection.open()
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 3, 42)])
    await Listening(settings, connection, send, flush).tick()
    assert calls == ["send", "flush", "save"]
    assert (await cursors.load()) is not None


async def test_a_failing_poll_backs_off_and_a_good_one_resets_it() -> None:
    """Each failure doubles the wait (up to 30 s); no poll is tried meanwhile."""
    chain = FakeChain()
    settings = Settings(confirmations_min=1, listener_start_block=1)
    sent: list[Emit] = []

    async def connect() -> WorkerPorts:
        return WorkerPorts(
            chain, MemoryCursorStore(), MemoryClaimStore(), MemoryMerchants(), MemoryLedgerStore()
        )

    async def send(emit: Emit) -> None:
        sent.append(emit)

    async def flush() -> None:
        return None

    connection = Connection(connect)
    await connection.open()
    listening = Listening(settings, connection, send, flush)
    waits = [listening.failed() for _ in range(10)]
    assert waits[:3] == [0.2, 0.4, 0.8] and waits[-1] == 30.0
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 3, 42)])
    await listening.tick()
    assert sent == []  # backing off
    listening.retry_at = 0.0
    await listening.tick()
    assert len(sent) == 1 and listening.failures == 0


async def test_the_leader_exports_the_head_its_age_and_a_halt() -> None:
    """The head and the listener's block once it polled; the head's age only
    while it leads (NaN otherwise); settlement halted as PostgreSQL says."""
    chain, claims = FakeChain(), MemoryClaimStore()
    settings = Settings(confirmations_min=1, listener_start_block=1)

    async def connect() -> WorkerPorts:
        return WorkerPorts(
            chain, MemoryCursorStore(), claims, MemoryMerchants(), MemoryLedgerStore()
        )

    async def nothing(*_: object) -> None:
        return None

    connection = Connection(connect)
    await connection.open()
    metrics = Metrics.create()
    listening = Listening(settings, connection, nothing, nothing, metrics)
    gauge = metrics.registry.get_sample_value
    assert math.isnan(gauge("paystream_chain_head_age_seconds", {}) or 0.0)  # never polled
    chain.mine_empty(3)
    await listening.tick()
    head = await chain.block_number()
    assert gauge("paystream_chain_head_block", {}) == head
    assert gauge("paystream_chain_listener_block", {}) == head
    assert 0.0 <= (gauge("paystream_chain_head_age_seconds", {}) or -1.0) < 5.0
    assert gauge("paystream_settlement_halted", {}) == 0
    await claims.halt("a reorg deeper than finality")
    listening.halt_checked_at = -HALT_CHECK_S
    await listening.tick()
    assert gauge("paystream_settlement_halted", {}) == 1
    listening.ticked_at -= LEADING_S + 1  # another worker leads now
    assert math.isnan(gauge("paystream_chain_head_age_seconds", {}) or 0.0)


async def test_a_settlement_is_told_final_once_finality_depth_deep() -> None:
    """Soft at confirmations_min, final at finality_depth (the block counts),
    once; blocks read late, already final, are told final in the same poll."""
    chain, claims = FakeChain(), MemoryClaimStore()
    settings = Settings(confirmations_min=1, finality_depth=3)
    listener = ChainListener(chain, claims, settings, start_block=1)
    ask = ClaimRequest(uuid.uuid4(), "alice", "d1", 5)
    sequence = (await claims.claim([ask]))[ask.payment_id].sequence
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, sequence, 42)])
    poll = await listener.poll(None)
    kinds = [CHAIN_EVENT.validate_json(e.payload()).kind for e in poll.emits]
    assert kinds == ["SETTLED"]
    chain.mine_empty()
    poll = await listener.poll(poll.cursor)
    assert poll.emits == []  # two deep
    chain.mine_empty()
    poll = await listener.poll(poll.cursor)
    (emit,) = poll.emits
    final = CHAIN_EVENT.validate_json(emit.payload())
    assert isinstance(final, SettlementFinal)
    assert (final.sequence, final.block_number, final.final_block_number) == (sequence, 1, 3)
    assert (final.payment_id, emit.partition) == (ask.payment_id, partition_of(sequence))
    chain.mine_empty()
    assert (await listener.poll(poll.cursor)).emits == []  # once
    late = await ChainListener(chain, claims, settings, start_block=1).poll(None)
    assert [CHAIN_EVENT.validate_json(e.payload()).kind for e in late.emits] == [
        "SETTLED",
        "FINAL",
    ]


async def test_a_reorg_deeper_than_finality_halts_settlement_and_undoes_it_all_the_same() -> None:
    chain, claims = FakeChain(), MemoryClaimStore()
    settings = Settings(confirmations_min=1, finality_depth=2)
    listener = ChainListener(chain, claims, settings, start_block=1)
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 3, 42)])
    chain.mine_empty(2)
    poll = await listener.poll(None)
    assert poll.cursor is not None and poll.cursor.final_block == 2  # block 1 told final
    chain.reorg(3)
    chain.mine_empty(3)
    deep = await listener.poll(poll.cursor)
    records = [
        CHAIN_EVENT.validate_json(e.payload())
        for e in deep.emits
        if e.topic != RECONCILIATION_ALERTS
    ]
    alerts = [
        ReconciliationAlert.model_validate_json(e.payload())
        for e in deep.emits
        if e.topic == RECONCILIATION_ALERTS
    ]
    assert [a.kind for a in alerts] == ["DEEP_REORG"]
    assert [type(r).__name__ for r in records] == ["EventOrphaned"]
    assert "resume-settlement" in (await claims.halted() or "")


async def test_a_reorg_while_a_poll_reads_is_found_at_the_next_poll() -> None:
    """The poll checked the last recorded block (still canonical), then the
    chain reorganised before it read the new blocks: the new block does not
    follow the recorded one, so nothing is recorded or emitted, and the next
    poll finds the fork and orphans the replaced block's events."""
    chain = FakeChain()
    listener = ChainListener(
        chain, MemoryClaimStore(), Settings(confirmations_min=1), start_block=1
    )
    await chain.settle_batch(1, [PaymentRecord(Account.create().address, 5, 3, 42)])
    cursor = (await listener.poll(None)).cursor  # block 1, with the settlement
    chain.mine_empty()

    class ReorgingAfterTheCheck(FakeChain):
        checked = False

    original = chain.block

    async def block_then_reorg(number: int) -> BlockLink | None:
        got = await original(number)
        if number == 1 and not ReorgingAfterTheCheck.checked:
            ReorgingAfterTheCheck.checked = True
            chain.reorg(2)  # blocks 1 and 2 replaced, once the fork check has passed
            chain.mine_empty(2)
        return got

    chain.block = block_then_reorg  # type: ignore[method-assign]
    racing = await listener.poll(cursor)
    assert racing.emits == [] and racing.cursor == cursor
    found = await listener.poll(racing.cursor)
    assert found.reorged_from == 1
    assert [CHAIN_EVENT.validate_json(e.payload()).kind for e in found.emits] == ["ORPHANED"]


async def test_a_poll_is_published_as_one_record_per_partition_in_the_order_found() -> None:
    chain, claims = FakeChain(), MemoryClaimStore()
    listener = ChainListener(chain, claims, Settings(confirmations_min=1), start_block=1)
    asks = [
        ClaimRequest(uuid.uuid4(), payer, "d", p) for payer, p in (("a", 5), ("b", 5), ("c", 2))
    ]
    granted = await claims.claim(asks)
    payee = Account.create().address
    records = [PaymentRecord(payee, 5, granted[a.payment_id].sequence, 42) for a in asks]
    await chain.settle_batch(1, records)
    poll = await listener.poll(None)
    assert len(poll.emits) == 3
    deposit = Emit(CHAIN_EVENTS, "bob", poll.emits[0].value)  # routed by its key, as deposits are
    alert = Emit(RECONCILIATION_ALERTS, "0x1", "{}")
    out = per_partition([*poll.emits, deposit, alert], partitions=12)
    assert out[0] is alert and len(out) == 4
    by_partition = {e.partition: ChainEvents.model_validate_json(e.payload()) for e in out[1:]}
    assert set(by_partition) == {5, 2, partition_for("bob", 12)}
    five = [(k.key, k.event.model_dump_json()) for k in by_partition[5].events]
    assert five == [(e.key, e.payload().decode()) for e in poll.emits[:2]]
    assert [k.key for k in by_partition[partition_for("bob", 12)].events] == ["bob"]


def test_a_poll_of_many_blocks_is_split_into_records_kafka_accepts() -> None:
    """2,000 settlements of one partition (a listener catching up reads up to
    listener_max_blocks at once): records under Kafka's 1 MiB message size,
    all events in the order found."""
    payee = Account.create().address
    emits = [
        Emit(
            CHAIN_EVENTS,
            f"ref:{n}",
            SettlementConfirmed(
                block_number=100 + n // 10,
                block_hash="0x" + "ab" * 32,
                tx_hash="0x" + "cd" * 32,
                log_index=n,
                sequence=sequence_of(5, n),
                payer_ref=n,
                payee_address=payee,
                amount=10**12,
                fee=10**9,
                batch_id=sequence_of(5, n),
                payment_id=uuid.uuid4(),
                payer_account=f"payer-{n}",
            ),
            5,
        )
        for n in range(2_000)
    ]
    out = per_partition(emits, partitions=12)
    assert max(len(e.payload()) for e in out) < 1_000_000 and {e.partition for e in out} == {5}
    keys = [k.key for e in out for k in ChainEvents.model_validate_json(e.payload()).events]
    assert keys == [e.key for e in emits]

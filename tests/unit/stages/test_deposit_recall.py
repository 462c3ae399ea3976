"""A deposit the balance no longer remembers is read from the ledger before it
is decided: shown again (a lost listener cursor), it is not credited twice;
removed by a reorg, it is taken back."""

from __future__ import annotations

from schemas.chain import (
    CHAIN_EVENT,
    DEPOSIT_RECORD,
    ChainEvents,
    DepositConfirmed,
    EventOrphaned,
    KeyedChainEvent,
)
from schemas.records import SinkRecord
from schemas.topics import DEPOSITS_CREDITED
from services.ports import WorkerPorts
from streams.connection import Connection
from streams.deposits import DepositRecall, named_deposits
from streams.outcomes import Outcome
from streams.stages.reconcile import handle_chain_events
from streams.stages.settled import ReconcileDeps
from tests.support.fakes import (
    FakeChain,
    MemoryClaimStore,
    MemoryCursorStore,
    MemoryLedgerStore,
    MemoryMerchants,
)
from tests.unit.stages.conftest import World, summary


def _deposit(tx: str, amount: int) -> bytes:
    record = DepositConfirmed(
        block_number=5,
        block_hash="0xb5",
        tx_hash=tx,
        log_index=0,
        account="bob",
        depositor="0x" + "00" * 20,
        amount=amount,
        deposit_id=f"{tx}:0",
    )
    return record.model_dump_json().encode()


def _removed(tx: str, amount: int) -> bytes:
    record = EventOrphaned(
        block_number=5,
        block_hash="0xb5",
        tx_hash=tx,
        log_index=0,
        amount=amount,
        account="bob",
        deposit_id=f"{tx}:0",
    )
    return record.model_dump_json().encode()


class Booked:
    """The reconciler with a balance that remembers one deposit, its
    ``deposits.credited`` records booked by the (fake) ledger."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = MemoryLedgerStore()

        async def ports() -> WorkerPorts:
            return WorkerPorts(
                FakeChain(), MemoryCursorStore(), MemoryClaimStore(), MemoryMerchants(), self.ledger
            )

        self.connection = Connection(ports)
        self.recall = DepositRecall(self.connection, world.balances)
        self.deps = ReconcileDeps(
            world.payments, world.balances, world.clock, deposit_memory=1, booked=self.recall.booked
        )

    async def decide(self, raw: bytes) -> Outcome:
        await self.recall.prepare(raw)
        outcome = handle_chain_events(raw, "bob", self.deps)
        records: list[SinkRecord] = [
            DEPOSIT_RECORD.validate_json(e.payload())
            for e in outcome.emits
            if e.topic == DEPOSITS_CREDITED
        ]
        await self.ledger.apply("sink", records)
        return outcome


async def test_a_forgotten_deposit_shown_again_is_not_credited_twice(world: World) -> None:
    booked = Booked(world)
    await booked.connection.open()
    await booked.decide(_deposit("0xa", 700))
    await booked.decide(_deposit("0xb", 5))
    assert list(world.balances["bob"].deposits) == ["0xb:0"]  # 0xa forgotten
    again = await booked.decide(_deposit("0xa", 700))
    assert again.note == "duplicate deposit"
    assert world.balances["bob"].summary() == summary(available=705)
    assert await booked.ledger.balance("bob") == 705


async def test_a_forgotten_deposit_a_reorg_removes_is_taken_back(world: World) -> None:
    booked = Booked(world)
    await booked.connection.open()
    await booked.decide(_deposit("0xa", 700))
    await booked.decide(_deposit("0xb", 5))
    removed = await booked.decide(_removed("0xa", 700))
    assert removed.note != "alert:ORPHANED"
    assert world.balances["bob"].summary() == summary(available=5)
    assert await booked.ledger.balance("bob") == 5
    assert await booked.ledger.deposit_credits(["0xa:0"]) == {"0xa:0": -1}


def test_only_deposit_events_name_a_deposit() -> None:
    assert named_deposits(_deposit("0xa", 1)) == [("0xa:0", "bob")]
    assert named_deposits(b'{"deposit_id": null, "account": "bob"}') == []
    assert named_deposits(b'not json "deposit_id"') == []
    assert named_deposits(b'{"kind": "SETTLED"}') == []


def test_a_record_of_a_poll_names_each_of_its_deposits() -> None:
    events = [
        KeyedChainEvent(key="bob", event=CHAIN_EVENT.validate_json(_deposit(tx, 1)))
        for tx in ("0xa", "0xb")
    ]
    raw = ChainEvents(events=tuple(events)).model_dump_json().encode()
    assert named_deposits(raw) == [("0xa:0", "bob"), ("0xb:0", "bob")]


def _poll(*events: bytes) -> bytes:
    keyed = tuple(KeyedChainEvent(key="bob", event=CHAIN_EVENT.validate_json(e)) for e in events)
    return ChainEvents(events=keyed).model_dump_json().encode()


async def test_forgotten_deposits_shown_again_in_one_record_are_not_credited_twice(
    world: World,
) -> None:
    """A listener that lost its cursor reads the chain again: both of bob's
    deposits come in one record, more than his balance remembers (one)."""
    booked = Booked(world)
    await booked.connection.open()
    await booked.decide(_deposit("0xa", 700))
    await booked.decide(_deposit("0xb", 5))
    await booked.decide(_deposit("0xc", 1))  # 0xa and 0xb forgotten
    again = await booked.decide(_poll(_deposit("0xa", 700), _deposit("0xb", 5)))
    assert again.note == "duplicate deposit x2"
    assert world.balances["bob"].summary() == summary(available=706)
    assert await booked.ledger.balance("bob") == 706
    removed = await booked.decide(_poll(_removed("0xa", 700), _removed("0xb", 5)))
    assert removed.note == "deposit reversed x2"
    assert world.balances["bob"].summary() == summary(available=1)
    assert await booked.ledger.balance("bob") == 1

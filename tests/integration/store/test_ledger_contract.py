"""The LedgerStore port's contract, against the in-memory fake and PostgreSQL:
balanced entries, fees, idempotent replays, balances as of a time; and a
property test of random deposits, settlements and replays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from schemas.records import SinkRecord
from services.bootstrap import pg_pool
from services.errors import RecordsRefused
from services.ports import LedgerStore
from services.settings import Settings
from services.store.ledger import FEE_ACCOUNT, SUSPENSE_ACCOUNT, TREASURY_ACCOUNT
from services.store.postgres import PostgresLedgerStore
from tests.integration.conftest import connect
from tests.integration.store.support import (
    OTHER_PAYEE,
    PAYEE,
    T0,
    deposit,
    postgres_store,
    reorged,
    resettled,
    resolved,
    reversal,
    settled,
)
from tests.support.fakes import MemoryLedgerStore


@pytest_asyncio.fixture(params=["memory", "postgres"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[LedgerStore]:
    if request.param == "memory":
        yield MemoryLedgerStore()
        return
    fresh: Settings = request.getfixturevalue("fresh_db")
    store, pool = postgres_store(fresh)
    await pool.open()  # type: ignore[attr-defined]
    yield store
    await pool.close()  # type: ignore[attr-defined]


async def test_settlement_with_a_fee_balances_to_zero(ledger: LedgerStore) -> None:
    """The fee the record carries (fixed when scored), whatever the merchant's rate now."""
    assert await ledger.apply("sink", [deposit("alice", 10_000)]) == 1
    assert await ledger.apply("sink", [settled("alice", 1_999, fee=49)]) == 1
    assert await ledger.balance("alice") == 10_000 - 1_999
    assert await ledger.balance(FEE_ACCOUNT) == 49
    assert await ledger.balance(PAYEE) == 1_999 - 49
    assert await ledger.balance(TREASURY_ACCOUNT) == -10_000
    assert await ledger.ledger_total() == 0


async def test_a_resolved_mismatch_books_what_the_chain_paid(ledger: LedgerStore) -> None:
    """Accepted: the payer pays the amount, the chain's payee and fee recipient
    get what the chain paid them, suspense the difference. Rejected: the payer
    pays nothing and suspense all of it."""
    await ledger.apply("sink", [deposit("dan", 10_000)])
    assert await ledger.apply("sink", [resolved("dan", 1_000, "ACCEPT", paid=1_500, fee=15)]) == 1
    assert await ledger.balance("dan") == 9_000
    assert await ledger.balance(OTHER_PAYEE) == 1_485
    assert await ledger.balance(FEE_ACCOUNT) == 15
    assert await ledger.balance(SUSPENSE_ACCOUNT) == -500
    rejected = resolved("dan", 2_000, "REJECT", paid=700)
    assert await ledger.apply("sink", [rejected, rejected]) == 1
    assert await ledger.balance("dan") == 9_000
    assert await ledger.balance(OTHER_PAYEE) == 1_485 + 700
    assert await ledger.balance(SUSPENSE_ACCOUNT) == -500 - 700
    assert await ledger.balance(PAYEE) == 0
    assert await ledger.ledger_total() == 0


async def test_reorgs_reverse_what_they_removed_and_what_follows_is_booked(
    ledger: LedgerStore,
) -> None:
    """A removed deposit and a removed settlement are booked negated, once; the
    deposit credited again and the payment settled again are booked anew."""
    credited = deposit("faye", 10_000)
    paid = settled("faye", 1_000, fee=10)
    await ledger.apply("sink", [credited, paid])
    undone: list[SinkRecord] = [reorged(paid), reversal(credited, owed=1_000)]
    assert await ledger.apply("sink", undone + undone) == 2
    assert await ledger.balance("faye") == 0
    assert (await ledger.balance(PAYEE), await ledger.balance(FEE_ACCOUNT)) == (0, 0)
    again = credited.model_copy(update={"event_id": uuid.uuid4(), "credit": 2})
    assert await ledger.apply("sink", [again, resettled(paid)]) == 2
    assert await ledger.balance("faye") == 9_000
    assert (await ledger.balance(PAYEE), await ledger.balance(FEE_ACCOUNT)) == (990, 10)
    assert await ledger.balance(TREASURY_ACCOUNT) == -10_000
    assert await ledger.ledger_total() == 0


async def test_each_deposit_remembers_its_last_credit_whatever_the_order_read(
    ledger: LedgerStore,
) -> None:
    """A deposit's credits and reversals are remembered for good; a replayed
    older one (the sink reads topics in no set order) never moves it back."""
    credited = deposit("gus", 5_000)
    other = deposit("gus", 7)
    again = credited.model_copy(update={"event_id": uuid.uuid4(), "credit": 2})
    await ledger.apply("sink", [again, reversal(credited), credited, other])
    await ledger.apply("sink", [reversal(other)])
    ids = [credited.deposit_id, other.deposit_id, "0xunknown:0"]
    assert await ledger.deposit_credits(ids) == {credited.deposit_id: 2, other.deposit_id: -1}
    await ledger.apply("sink", [reversal(again)])
    assert await ledger.deposit_credits(ids[:1]) == {credited.deposit_id: -2}


async def test_a_record_the_store_cannot_keep_refuses_its_batch(ledger: LedgerStore) -> None:
    """All or nothing: the sink then narrows the batch to the record."""
    poison = settled("erin", 100).model_copy(update={"currency": "PT\x00USD"})
    with pytest.raises(RecordsRefused):
        await ledger.apply("sink", [deposit("erin", 1_000), poison])
    assert await ledger.balance("erin") == 0
    assert await ledger.apply("sink", [deposit("erin", 1_000)]) == 1


async def test_a_replayed_batch_changes_nothing(ledger: LedgerStore) -> None:
    batch: list[SinkRecord] = [deposit("bob", 500), settled("bob", 200), settled("bob", 100)]
    assert await ledger.apply("sink", batch) == 3
    assert await ledger.apply("sink", batch + batch) == 0
    assert await ledger.balance("bob") == 200
    assert await ledger.apply("another-consumer", batch[:1]) == 1  # idempotency is per consumer


async def test_balance_as_of_a_time(ledger: LedgerStore) -> None:
    await ledger.apply(
        "sink", [deposit("carol", 1_000, at=T0), settled("carol", 300, at=T0 + timedelta(hours=1))]
    )
    assert await ledger.balance("carol", as_of=T0 + timedelta(minutes=30)) == 1_000
    assert await ledger.balance("carol") == 700


operation = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(["a", "b", "c"]), st.integers(1, 10**9)),
    st.tuples(
        st.just("pay"),
        st.sampled_from(["a", "b", "c"]),
        st.integers(1, 10**9),
        st.integers(0, 10_000),  # fee basis points
    ),
    st.tuples(st.just("replay"), st.integers(0, 50)),
)


async def _run(store: LedgerStore, ops: list[tuple[Any, ...]]) -> None:
    applied: list[Any] = []
    expected = {"a": 0, "b": 0, "c": 0}
    for op in ops:
        if op[0] == "deposit":
            record: Any = deposit(op[1], op[2])
            expected[op[1]] += op[2]
        elif op[0] == "pay":
            record = settled(op[1], op[2], fee=op[2] * op[3] // 10_001)
            expected[op[1]] -= op[2]
        elif applied:
            record = applied[op[1] % len(applied)]  # at-least-once delivery
        else:
            continue
        await store.apply("sink", [record])
        applied.append(record)
    assert await store.ledger_total() == 0
    for account, amount in expected.items():
        assert await store.balance(account) == amount


@hsettings(max_examples=100, deadline=None)
@given(ops=st.lists(operation, max_size=40))
def test_random_histories_keep_the_books_balanced_in_memory(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_run(MemoryLedgerStore(), ops))


@pytest.mark.integration
@hsettings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(operation, min_size=5, max_size=25))
def test_random_histories_keep_the_books_balanced_in_postgres(
    fresh_db: Settings, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_postgres_history(fresh_db, ops))


async def _postgres_history(settings: Settings, ops: list[tuple[Any, ...]]) -> None:
    with connect(settings, settings.pg_database) as conn:
        exists = conn.execute("SELECT to_regclass('ledger_entries')").fetchone()
    if exists == (None,):
        postgres_store(settings)
    else:
        with connect(settings, settings.pg_database) as conn:
            conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
            conn.execute("DELETE FROM ledger_entries")
            conn.execute("DELETE FROM processed_events")
            conn.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")
    async with pg_pool(settings) as pool:
        await _run(PostgresLedgerStore(pool, "PTUSD"), ops)

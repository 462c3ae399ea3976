"""The ClaimStore port's contract, against the in-memory fake and PostgreSQL:
one sequence per payment id, first claim wins, consecutive counters within a
call, replays burn no counter, a settlement halt keeps its first reason; and,
on PostgreSQL only, an operator's resume, what the table itself
refuses and a database without the schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
import pytest_asyncio

from schemas.sequence import counter_of, partition_of, sequence_of
from services.bootstrap import pg_pool
from services.errors import InvariantViolation, SchemaMissing
from services.ports import ClaimRequest, ClaimStore
from services.settings import Settings
from services.store.claims import PostgresClaimStore
from services.store.halts import resume
from services.store.schema import upgrade
from tests.integration.conftest import connect
from tests.support.fakes import MemoryClaimStore


@pytest_asyncio.fixture(params=["memory", "postgres"])
async def claims(request: pytest.FixtureRequest) -> AsyncIterator[ClaimStore]:
    if request.param == "memory":
        yield MemoryClaimStore()
        return
    fresh: Settings = request.getfixturevalue("fresh_db")
    upgrade(fresh)
    async with pg_pool(fresh) as pool:
        yield PostgresClaimStore(pool)


def ask(partition: int, payer: str = "alice", payment_id: uuid.UUID | None = None) -> ClaimRequest:
    return ClaimRequest(payment_id or uuid.uuid4(), payer, f"digest-of-{payer}", partition)


async def test_new_claims_carry_their_partition_and_consecutive_counters_in_order(
    claims: ClaimStore,
) -> None:
    first = await claims.next_counter()
    requests = [ask(3), ask(0, "bob"), ask(7, "carol"), ask(3, "dave")]
    got = await claims.claim(requests)
    assert list(got) == [r.payment_id for r in requests]
    for i, r in enumerate(requests):
        claim = got[r.payment_id]
        assert claim.belongs_to(r)
        assert (claim.payer_account, claim.request_digest) == (r.payer_account, r.request_digest)
        assert partition_of(claim.sequence) == r.partition
        assert counter_of(claim.sequence) == first + i
    assert len({c.sequence for c in got.values()}) == len(requests)
    assert await claims.next_counter() == first + len(requests)


async def test_reclaiming_returns_the_same_claims_and_burns_no_counter(claims: ClaimStore) -> None:
    requests = [ask(1), ask(2, "bob")]
    before = await claims.claim(requests)
    after_first = await claims.next_counter()
    assert await claims.claim(requests) == before
    assert await claims.claim([requests[1], requests[0]]) == before  # any order, same claims
    assert await claims.next_counter() == after_first
    mixed = [requests[0], ask(4, "carol"), requests[1]]
    got = await claims.claim(mixed)
    assert got[requests[0].payment_id] == before[requests[0].payment_id]
    assert got[mixed[1].payment_id].sequence == sequence_of(4, after_first)
    assert await claims.next_counter() == after_first + 1


async def test_a_second_payer_with_the_same_id_gets_the_first_payers_claim(
    claims: ClaimStore,
) -> None:
    alice = ask(5, "alice")
    bob = ask(9, "bob", payment_id=alice.payment_id)
    mine = (await claims.claim([alice]))[alice.payment_id]
    counter = await claims.next_counter()
    theirs = (await claims.claim([bob]))[bob.payment_id]
    assert theirs == mine
    assert partition_of(theirs.sequence) == 5
    assert theirs.belongs_to(alice) and not theirs.belongs_to(bob)
    same_payer_other_body = ClaimRequest(alice.payment_id, "alice", "another digest", 5)
    assert not theirs.belongs_to(same_payer_other_body)
    assert await claims.next_counter() == counter


async def test_duplicates_inside_one_call_the_first_wins(claims: ClaimStore) -> None:
    first = await claims.next_counter()
    alice = ask(2, "alice")
    bob = ask(6, "bob", payment_id=alice.payment_id)
    other = ask(3, "carol")
    got = await claims.claim([alice, other, alice, bob])
    assert list(got) == [alice.payment_id, other.payment_id]
    assert got[alice.payment_id].belongs_to(alice)
    assert got[alice.payment_id].sequence == sequence_of(2, first)
    assert got[other.payment_id].sequence == sequence_of(3, first + 1)
    assert await claims.next_counter() == first + 2


async def test_claims_of_maps_sequences_back_and_omits_unknown_ones(claims: ClaimStore) -> None:
    requests = [ask(1), ask(8, "bob")]
    got = await claims.claim(requests)
    sequences = [got[r.payment_id].sequence for r in requests]
    unknown = [sequence_of(1, 10**9), 0, 2**64 - 1]
    assert await claims.claims_of(sequences + unknown) == {
        got[r.payment_id].sequence: got[r.payment_id] for r in requests
    }
    assert await claims.claims_of([]) == {}
    assert await claims.claim([]) == {}


async def test_next_counter_is_what_the_next_new_claim_uses(claims: ClaimStore) -> None:
    for partition in (0, 4, 4):
        counter = await claims.next_counter()
        assert await claims.next_counter() == counter  # reading does not consume it
        request = ask(partition)
        claim = (await claims.claim([request]))[request.payment_id]
        assert claim.sequence == sequence_of(partition, counter)


async def test_a_partition_out_of_range_is_an_invariant_violation(claims: ClaimStore) -> None:
    with pytest.raises(InvariantViolation):
        await claims.claim([ask(-1)])
    with pytest.raises(InvariantViolation):
        await claims.claim([ask(1 << 23)])


async def test_a_halt_stays_open_with_its_first_reason(claims: ClaimStore) -> None:
    assert await claims.halted() is None
    await claims.halt("a reorg from block 10")
    await claims.halt("a reorg from block 12")  # another, while halted: the first is kept
    assert await claims.halted() == "a reorg from block 10"


async def test_an_operator_resumes_a_halt_once(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    async with pg_pool(fresh_db) as pool:
        store = PostgresClaimStore(pool)
        await store.halt("a reorg from block 10")
        with connect(fresh_db) as conn:
            assert resume(conn, "ops") == "a reorg from block 10"
            assert resume(conn, "ops") is None
        assert await store.halted() is None
        await store.halt("a reorg from block 30")  # a new one after the resume
        assert await store.halted() == "a reorg from block 30"


def test_the_table_rejects_a_duplicate_sequence(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    insert = (
        "INSERT INTO payment_claims (payment_id, payer_account, request_digest, partition,"
        " sequence) VALUES (%s, %s, 'd', 1, %s)"
    )
    with connect(fresh_db, fresh_db.pg_database) as conn:
        conn.execute(insert, (uuid.uuid4(), "alice", sequence_of(1, 1)))
        with pytest.raises(psycopg.errors.UniqueViolation, match="sequence"):
            conn.execute(insert, (uuid.uuid4(), "bob", sequence_of(1, 1)))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, (uuid.uuid4(), "carol", -1))


async def test_a_sequence_claimed_twice_is_an_invariant_violation(fresh_db: Settings) -> None:
    """A counter that went back (a restored sequence) must not pay anyone twice."""
    upgrade(fresh_db)
    async with pg_pool(fresh_db) as pool:
        store = PostgresClaimStore(pool)
        await store.claim([ask(1)])
        with connect(fresh_db, fresh_db.pg_database) as conn:
            conn.execute("SELECT setval('settlement_counter', 1, false)")
        with pytest.raises(InvariantViolation, match="claimed twice"):
            await store.claim([ask(1)])


async def test_a_database_without_the_schema_says_to_migrate(fresh_db: Settings) -> None:
    async with pg_pool(fresh_db) as pool:
        store = PostgresClaimStore(pool)
        for call in (store.claim([ask(1)]), store.claims_of([1]), store.next_counter()):
            with pytest.raises(SchemaMissing, match="paystream db migrate"):
                await call

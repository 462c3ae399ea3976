"""The submission stage reads one ``chain.submitted`` record per partition-batch."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.codes import FailureCode
from schemas.payments import BatchSubmitted, PaymentFailed
from streams.stages.settlement.batching import handle_scored
from streams.stages.settlement.submit import SubmitResult, settle, submitted_records
from streams.stages.submitted import SubmittedDeps, handle_submitted
from streams.state import PaymentState, Status
from tests.unit.stages.conftest import (
    CountedWrites,
    World,
    approve,
    due_batch,
    sent_of,
    summary,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(members: list[PaymentState], result: SubmitResult) -> bytes:
    (emit,) = submitted_records(members, 1, result, NOW)  # all in one partition
    return emit.payload()


async def test_a_batch_of_one_partition_is_one_record(world: World) -> None:
    batch = due_batch(world, 3, partition=5)
    emits = await settle(batch, world.ports, world.settings, world.clock)
    assert [(e.partition, e.key) for e in emits] == [(5, str(batch.batch_id))]
    assert {s.payment_id for s in sent_of(emits)} == {m.payment_id for m in batch.members}


def test_each_payment_of_a_refused_record_fails_and_its_payer_is_written_once(
    world: World,
) -> None:
    batch = due_batch(world, 3)  # alice's three payments
    balances = CountedWrites(world.balances)
    deps = SubmittedDeps(world.payments, balances, world.clock)
    raw = _record(batch.members, SubmitResult.rejected(FailureCode.SETTLEMENT_REJECTED, "no"))
    outcome = handle_submitted(raw, deps)
    failed = [PaymentFailed.model_validate_json(e.payload()) for e in outcome.emits]
    assert sorted(f.payment_id for f in failed) == sorted(m.payment_id for m in batch.members)
    assert balances.writes == ["alice"]
    assert balances["alice"].summary() == summary(available=10**9)
    assert {s.status for s in world.payments.values()} == {Status.FAILED}
    again = handle_submitted(raw, deps)  # redelivered: the same answers, nothing moves
    assert [e.payload() for e in again.emits] == [e.payload() for e in outcome.emits]
    assert balances["alice"].summary() == summary(available=10**9)


def test_a_record_for_several_payers_moves_each_payment(world: World) -> None:
    for offset, payload in enumerate([*approve(world, 1), *approve(world, 1, payer="bob")]):
        handle_scored(payload, 0, offset, world.settlement)
    members = list(world.payments.values())
    sent = _record(members, SubmitResult("SUBMITTED", tx_hash="0xaa"))
    outcome = handle_submitted(sent, world.submitted)
    assert outcome.emits == () and outcome.note == "submitted x2"
    assert {(s.payer_account, s.status, s.tx_hash) for s in world.payments.values()} == {
        ("alice", Status.SUBMITTED, "0xaa"),
        ("bob", Status.SUBMITTED, "0xaa"),
    }


def test_a_record_of_the_earlier_one_payment_shape_is_read_as_a_batch_of_one(
    world: World,
) -> None:
    (member,) = due_batch(world, 1).members
    old = {
        "outcome": "SUBMITTED",
        "payment_id": str(member.payment_id),
        "payer_account": "alice",
        "amount": member.amount,
        "sequence": 7,
        "batch_id": 1,
        "tx_hash": "0xaa",
        "requested_at": member.requested_at.isoformat(),
        "submitted_at": NOW.isoformat(),
    }
    record = BatchSubmitted.model_validate(old)
    assert [(p.payment_id, p.sequence) for p in record.payments] == [(member.payment_id, 7)]
    handle_submitted(record.model_dump_json().encode(), world.submitted)
    (state,) = world.payments.values()
    assert (state.status, state.sequence, state.tx_hash) == (Status.SUBMITTED, 7, "0xaa")


def test_a_record_without_payments_is_a_dead_letter(world: World) -> None:
    raw = b'{"outcome": "SUBMITTED", "batch_id": 1, "submitted_at": "2026-01-01T00:00:00Z", '
    outcome = handle_submitted(raw + b'"payments": []}', world.submitted)
    assert outcome.dead_letter is not None


async def test_a_large_merged_batch_is_split_into_records_kafka_accepts(world: World) -> None:
    members = due_batch(world, 3).members * 700  # 2,100 payments of one partition
    emits = submitted_records(members, 1, SubmitResult("SUBMITTED", tx_hash="0xaa"), NOW)
    assert max(len(e.payload()) for e in emits) < 1_000_000 and len(emits) > 1
    assert [s.payment_id for s in sent_of(emits)] == [m.payment_id for m in members]

"""Fraud stage: validation codes, holds, rules, duplicates, dead letters,
re-routing to the payer's partition, and payment id conflicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account

from schemas.base import conflict_event_id, outcome_event_id
from schemas.partitioning import partition_for
from schemas.payments import PaymentFailed, PaymentRequested, PaymentScored
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED, PAYMENTS_REQUESTED
from streams.stages.fraud import FraudDeps, handle_request
from streams.state import Balance, Status
from tests.unit.stages.conftest import BLOCKED, World, key_of, raw, request, summary


def _failed_code(world: World, body: dict[str, object]) -> str:
    outcome = handle_request(raw(body), "alice", world.fraud)
    (emit,) = outcome.emits
    assert emit.topic == PAYMENTS_FAILED
    return PaymentFailed.model_validate_json(emit.payload()).code.value


def test_a_request_a_day_old_is_still_in_time(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    late = request(requested_at="2026-11-21T12:00:01+00:00")  # 23:59:59 before the clock
    assert handle_request(raw(late), "alice", world.fraud).note == "approved"


def test_approved_request_is_held_and_scored(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request(amount="1500")
    outcome = handle_request(raw(body), "alice", world.fraud)
    (emit,) = outcome.emits
    assert emit.topic == FRAUD_SCORED
    scored = PaymentScored.model_validate_json(emit.payload())
    assert scored.request.amount == 1_500 and scored.fraud.decision == "APPROVE"
    assert world.balances["alice"].summary() == summary(available=3_500, held=1_500)
    assert world.payments[key_of(body)].status == Status.SCORED


def test_a_repeated_request_changes_nothing_and_republishes_the_same_record(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    first = handle_request(raw(body), "alice", world.fraud)
    again = handle_request(raw(body), "alice", world.fraud)
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)
    assert again.note == "duplicate"
    assert [e.payload() for e in again.emits] == [e.payload() for e in first.emits]


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"amount": 10.5}, "INVALID_AMOUNT"),
        ({"amount": 0}, "INVALID_AMOUNT"),
        ({"amount": "-5"}, "INVALID_AMOUNT"),
        ({"payee_address": "0x" + "ab" * 20}, "INVALID_ADDRESS"),
        ({"currency": "DOGE"}, "UNKNOWN_CURRENCY"),
        ({"payer_account": "no spaces"}, "INVALID_SCHEMA"),
        ({"payer_account": "0x" + "ab" * 20}, "INVALID_SCHEMA"),  # a payee's ledger name
        ({"requested_at": "2026-11-22T12:00:00"}, "INVALID_SCHEMA"),
        ({"surprise": 1}, "INVALID_SCHEMA"),
        ({"amount": 10**13}, "AMOUNT_OVER_LIMIT"),
        ({"requested_at": "1970-01-01T00:00:00+00:00"}, "REQUESTED_AT_OUT_OF_WINDOW"),
        ({"requested_at": 0}, "REQUESTED_AT_OUT_OF_WINDOW"),  # lax JSON: a Unix time
        ({"requested_at": "2026-11-23T12:00:01+00:00"}, "REQUESTED_AT_OUT_OF_WINDOW"),
        ({"payee_address": BLOCKED}, "FRAUD_BLOCKED"),
    ],
)
def test_bad_requests_fail_with_their_code(
    world: World, override: dict[str, Any], code: str
) -> None:
    world.balances["alice"] = Balance(available=10**14)
    assert _failed_code(world, request(**override)) == code


def test_insufficient_funds(world: World) -> None:
    world.balances["alice"] = Balance(available=999)
    assert _failed_code(world, request(amount=1_000)) == "INSUFFICIENT_FUNDS"
    assert world.balances["alice"].summary() == summary(available=999)


def test_velocity_sends_a_burst_to_review_and_holds_it(world: World) -> None:
    world.balances["alice"] = Balance(available=10**9)
    limit = world.settings.fraud_velocity_max_count
    notes = [handle_request(raw(request()), "alice", world.fraud).note for _ in range(limit + 1)]
    assert notes[:limit] == ["approved"] * limit
    assert notes[limit] == "review"
    assert world.balances["alice"].held == 1_000 * (limit + 1)


@pytest.mark.parametrize("payload", [b"\x00\xff garbage", b"[1, 2]", json.dumps({"a": 1}).encode()])
def test_undecodable_or_unaddressable_records_are_dead_letters(
    world: World, payload: bytes
) -> None:
    outcome = handle_request(payload, "alice", world.fraud)
    assert outcome.dead_letter is not None and outcome.emits == ()


def test_a_replay_after_a_crash_that_lost_the_hold_restores_it(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    handle_request(raw(body), "alice", world.fraud)
    world.balances["alice"] = Balance(available=5_000)  # the balance write was lost
    handle_request(raw(body), "alice", world.fraud)
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)


def test_a_replay_after_a_crash_that_lost_the_status_holds_once(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    handle_request(raw(body), "alice", world.fraud)
    del world.payments[key_of(body)]  # the status write was lost
    outcome = handle_request(raw(body), "alice", world.fraud)
    assert outcome.note == "approved"
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)


# Co-partitioning: a payer's state lives on its payer's partition (murmur2).


def _home(world: World, payer: str) -> int:
    return partition_for(payer, world.settings.kafka_partitions)


def _away(world: World, payer: str) -> int:
    return (_home(world, payer) + 1) % world.settings.kafka_partitions


def _tables(world: World) -> tuple[object, ...]:
    return (dict(world.payments), dict(world.balances), dict(world.velocity))


@pytest.mark.parametrize("key", ["alice", "", "bob"])
def test_a_request_off_its_payers_partition_is_rerouted_as_is_and_writes_nothing(
    world: World, key: str
) -> None:
    world.balances["alice"] = Balance(available=5_000)
    before = _tables(world)
    # Odd spacing, field order and escapes: the copy must be these bytes, not a re-encoding.
    body = b'{ "requested_at":"2026-11-22T11:59:59+00:00", "payer_account" : "alice",\n'
    body += b' "payment_id": "%s", "amount": "1500", "currency": "PTUSD",' % (
        request()["payment_id"].encode()
    )
    body += b' "payee_address": "%s", "metadata": {"note": "caf\\u00e9 \xc3\xa9"} }' % (
        request()["payee_address"].encode()
    )
    outcome = handle_request(body, key, world.fraud, _away(world, "alice"))
    assert outcome.note == "rerouted" and outcome.dead_letter is None
    (emit,) = outcome.emits
    assert (emit.topic, emit.key, emit.partition) == (
        PAYMENTS_REQUESTED,
        "alice",
        _home(world, "alice"),
    )
    assert emit.payload() == body
    assert _tables(world) == before


def test_an_invalid_body_with_a_string_payer_is_rerouted_before_it_is_rejected(
    world: World,
) -> None:
    body = raw(request(payer="no spaces", amount=10.5))
    outcome = handle_request(body, "", world.fraud, _away(world, "no spaces"))
    (emit,) = outcome.emits
    assert (emit.topic, emit.partition) == (PAYMENTS_REQUESTED, _home(world, "no spaces"))
    assert world.payments == {}
    (failed,) = handle_request(body, "", world.fraud, emit.partition).emits
    assert (failed.topic, failed.key, failed.partition) == (
        PAYMENTS_FAILED,
        "no spaces",
        _home(world, "no spaces"),
    )


@pytest.mark.parametrize("key", ["", "bob", "mallory"])
@pytest.mark.parametrize(
    ("available", "override", "topic", "note"),
    [
        (5_000, {}, FRAUD_SCORED, "approved"),
        (999, {}, PAYMENTS_FAILED, "INSUFFICIENT_FUNDS"),
        (5_000, {"currency": "DOGE"}, PAYMENTS_FAILED, "UNKNOWN_CURRENCY"),
        (5_000, {"amount": 10.5}, PAYMENTS_FAILED, "INVALID_AMOUNT"),
        (5_000, {"payee_address": BLOCKED}, PAYMENTS_FAILED, "FRAUD_BLOCKED"),
    ],
)
def test_on_its_payers_partition_any_key_is_processed_and_answered_there(
    world: World, key: str, available: int, override: dict[str, Any], topic: str, note: str
) -> None:
    world.balances["alice"] = Balance(available=available)
    home = _home(world, "alice")
    outcome = handle_request(raw(request(**override)), key, world.fraud, home)
    assert outcome.note == note
    (emit,) = outcome.emits
    assert (emit.topic, emit.key, emit.partition) == (topic, "alice", home)


@pytest.mark.parametrize("payer", [None, 42, ["alice"]])
def test_a_request_without_a_string_payer_is_rejected_where_it_is(
    world: World, payer: object
) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request(payer_account=payer)
    if payer is None:
        del body["payer_account"]
    outcome = handle_request(raw(body), "alice", world.fraud, 5)
    (emit,) = outcome.emits
    assert (emit.topic, emit.partition) == (PAYMENTS_FAILED, 5)
    failed = PaymentFailed.model_validate_json(emit.payload())
    assert failed.code.value == "INVALID_SCHEMA"
    assert emit.key == (failed.payer_account or "alice")
    assert world.balances == {"alice": Balance(available=5_000)} and world.velocity == {}


def test_a_rerouted_copy_and_a_replayed_original_are_one_payment(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    original, away = raw(request()), _away(world, "alice")
    (copy,) = handle_request(original, "", world.fraud, away).emits
    first = handle_request(copy.payload(), copy.key, world.fraud, copy.partition)
    assert first.note == "approved"
    (copy_again,) = handle_request(original, "", world.fraud, away).emits  # the replay
    assert copy_again == copy
    again = handle_request(copy_again.payload(), copy.key, world.fraud, copy.partition)
    assert again.note == "duplicate"
    assert [(e.key, e.partition, e.payload()) for e in again.emits] == [
        (e.key, e.partition, e.payload()) for e in first.emits
    ]
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)
    assert len(world.payments) == 1


# The same payment id: a retry of the same body, or a conflict.


def _approved(world: World, body: dict[str, Any]) -> PaymentScored:
    (emit,) = handle_request(raw(body), "alice", world.fraud, _home(world, "alice")).emits
    return PaymentScored.model_validate_json(emit.payload())


def test_a_retry_of_the_same_body_republishes_the_first_record(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    scored = _approved(world, body)
    retry = {**body, "requested_at": "2026-11-22T11:59:59.5+00:00", "metadata": {"try": 2}}
    outcome = handle_request(raw(retry), "alice", world.fraud, _home(world, "alice"))
    assert outcome.note == "duplicate"
    (emit,) = outcome.emits
    assert emit.payload() == scored.model_dump_json().encode()
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 2_000},
        {"payee_address": request()["payee_address"]},
        {"merchant_id": "shop"},
    ],
)
def test_the_same_id_with_another_body_is_a_conflict_that_leaves_the_payment_alone(
    world: World, change: dict[str, Any]
) -> None:
    world.balances["alice"] = Balance(available=5_000)
    world.balances["bob"] = Balance(available=5_000)
    body = request()
    scored = _approved(world, body)
    before = _tables(world)
    other = {**body, **change}
    payer = other["payer_account"]
    outcome = handle_request(raw(other), payer, world.fraud, _home(world, payer))
    assert outcome.note == "PAYMENT_ID_CONFLICT"
    (emit,) = outcome.emits
    assert (emit.topic, emit.key, emit.partition) == (PAYMENTS_FAILED, payer, _home(world, payer))
    failed = PaymentFailed.model_validate_json(emit.payload())
    digest = PaymentRequested.model_validate(other).digest()
    assert failed.event_id == conflict_event_id(scored.request.payment_id, digest)
    assert failed.event_id not in {
        outcome_event_id(kind, scored.request.payment_id) for kind in ("scored", "failed")
    }
    assert failed.code.value == "PAYMENT_ID_CONFLICT"
    assert (failed.payment_id, failed.payer_account, failed.amount) == (
        scored.request.payment_id,
        payer,
        other["amount"],
    )
    assert _tables(world) == before  # the payment, every balance and velocity
    # The first request keeps the id: its replay still gets its own record.
    (again,) = handle_request(raw(body), "alice", world.fraud, _home(world, "alice")).emits
    assert again.payload() == scored.model_dump_json().encode()


def test_a_conflict_does_not_repair_the_known_payments_balance(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    _approved(world, body)
    world.balances["alice"] = Balance(available=5_000)  # as if the hold's write was lost
    other = {**body, "amount": 7}
    outcome = handle_request(raw(other), "alice", world.fraud, _home(world, "alice"))
    assert outcome.note == "PAYMENT_ID_CONFLICT"
    assert world.balances["alice"] == Balance(available=5_000)


def test_a_replayed_conflict_publishes_an_equal_record(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    _approved(world, body)
    other, home = raw({**body, "amount": 2_000}), _home(world, "alice")
    (first,) = handle_request(other, "alice", world.fraud, home).emits
    (again,) = handle_request(other, "", world.fraud, home).emits
    assert again == first
    world.clock.advance(60_000)  # a replay after a restart: same record, the replay's times
    (later,) = handle_request(other, "alice", world.fraud, home).emits
    times = {"occurred_at", "failed_at"}
    a, b = (PaymentFailed.model_validate_json(e.payload()) for e in (first, later))
    assert a.event_id == b.event_id and a.failed_at < b.failed_at
    assert a.model_dump(exclude=times) == b.model_dump(exclude=times)


def test_a_known_payment_without_a_digest_republishes_as_before(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    scored = _approved(world, body)
    pid = key_of(body)
    assert world.payments[pid].request_digest is not None
    world.payments[pid] = world.payments[pid].model_copy(update={"request_digest": None})
    other = {**body, "amount": 2_000}
    outcome = handle_request(raw(other), "alice", world.fraud, _home(world, "alice"))
    assert outcome.note == "duplicate"
    (emit,) = outcome.emits
    assert emit.payload() == scored.model_dump_json().encode()


def test_a_known_id_with_a_body_that_does_not_validate_gets_the_payments_records(
    world: World,
) -> None:
    """The payer's retry with a broken body is the same payment's replay."""
    world.balances["alice"] = Balance(available=5_000)
    body = request()
    scored = _approved(world, body)
    other = raw({**body, "amount": 10.5})
    outcome = handle_request(other, "", world.fraud, _home(world, "alice"))
    assert outcome.note == "duplicate"
    (emit,) = outcome.emits
    assert (emit.key, emit.partition) == ("alice", _home(world, "alice"))
    assert emit.payload() == scored.model_dump_json().encode()


@pytest.mark.parametrize("payer", ["bob", 42])
def test_another_payers_request_with_a_known_id_is_its_own_here(
    world: World, payer: object
) -> None:
    """Payments are kept per payer: another payer's request with the same id is
    decided as its own (its claim, when it is sent, decides which keeps the id),
    and the first payment is left alone."""
    world.balances["alice"] = Balance(available=5_000)
    world.balances["bob"] = Balance(available=5_000)
    body = request()
    _approved(world, body)
    before = world.payments[key_of(body)]
    where = _home(world, payer) if isinstance(payer, str) else _away(world, "alice")
    valid = handle_request(raw({**body, "payer_account": payer}), "", world.fraud, where)
    assert valid.note == ("approved" if payer == "bob" else "INVALID_SCHEMA")
    broken = handle_request(
        raw({**body, "amount": 10.5, "payer_account": payer}), "", world.fraud, where
    )
    assert broken.note == ("duplicate" if payer == "bob" else "INVALID_AMOUNT")
    assert world.payments[key_of(body)] == before


@pytest.mark.parametrize("which", ["zero", "contract", "denied"])
def test_a_payee_that_can_never_be_paid_is_refused_before_the_hold(
    world: World, which: str
) -> None:
    contract, denied = Account.create().address, Account.create().address
    listed = frozenset({denied.lower()})  # the lists are compared without case
    settings = world.settings.model_copy(update={"payee_denylist": listed})
    deps = FraudDeps(
        settings,
        world.payments,
        world.balances,
        world.velocity,
        world.clock,
        unpayable=frozenset({contract.lower()}),
    )
    world.balances["alice"] = Balance(available=5_000)
    payee = {"zero": "0x" + "0" * 40, "contract": contract, "denied": denied}[which]
    outcome = handle_request(raw(request(payee_address=payee)), "alice", deps)
    (emit,) = outcome.emits
    assert outcome.note == "PAYEE_NOT_PAYABLE", outcome
    assert emit.topic == "payments.failed"
    assert world.balances["alice"].summary() == summary(available=5_000)

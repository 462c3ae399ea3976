"""Fraud stage: validation codes, holds, rules, duplicates, dead letters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.payments import PaymentFailed, PaymentScored
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED
from streams.stages.fraud import handle_request
from streams.state import Balance, Status
from tests.unit.stages.conftest import BLOCKED, World, raw, request, summary


def _failed_code(world: World, body: dict[str, object]) -> str:
    outcome = handle_request(raw(body), "alice", world.fraud)
    (emit,) = outcome.emits
    assert emit.topic == PAYMENTS_FAILED
    return PaymentFailed.model_validate_json(emit.payload()).code.value


def test_approved_request_is_held_and_scored(world: World) -> None:
    world.balances["alice"] = Balance(available=5_000)
    body = request(amount="1500")
    outcome = handle_request(raw(body), "alice", world.fraud)
    (emit,) = outcome.emits
    assert emit.topic == FRAUD_SCORED
    scored = PaymentScored.model_validate_json(emit.payload())
    assert scored.request.amount == 1_500 and scored.fraud.decision == "APPROVE"
    assert world.balances["alice"].summary() == summary(available=3_500, held=1_500)
    assert world.payments[body["payment_id"]].status == Status.SCORED


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
        ({"requested_at": "2026-11-22T12:00:00"}, "INVALID_SCHEMA"),
        ({"surprise": 1}, "INVALID_SCHEMA"),
        ({"amount": 10**13}, "AMOUNT_OVER_LIMIT"),
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
    del world.payments[body["payment_id"]]  # the status write was lost
    outcome = handle_request(raw(body), "alice", world.fraud)
    assert outcome.note == "approved"
    assert world.balances["alice"].summary() == summary(available=4_000, held=1_000)

"""Holds for review end: an approval sends the payment on, a denial or the
expiry fails it and releases the hold; the first decision wins."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from schemas.partitioning import partition_for
from schemas.payments import PaymentFailed, PaymentScored
from schemas.review import ReviewDecision, ReviewHeld
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED, PAYMENTS_REVIEW, REVIEW_DECISIONS
from streams.stages.fraud import handle_request
from streams.stages.review import handle_decision
from streams.state import Balance, Status, payment_key
from tests.unit.stages.conftest import World, raw, request, summary

ALICE = partition_for("alice", 8)


def held(world: World) -> dict[str, Any]:
    """A payment the velocity rule sends to REVIEW (the rest of the burst settles
    nothing here: only its holds count)."""
    world.settings = world.settings.model_copy(update={"fraud_velocity_max_count": 1})
    world.fraud.settings = world.review.settings = world.settings
    world.balances["alice"] = Balance(available=10_000)
    handle_request(raw(request()), "alice", world.fraud)
    body = request(amount=2_000)
    outcome = handle_request(raw(body), "alice", world.fraud)
    assert outcome.note == "review"
    (emit,) = outcome.emits
    assert emit.topic == PAYMENTS_REVIEW
    assert isinstance(emit.value, ReviewHeld) and emit.value.request.amount == 2_000
    return body


def decide(world: World, body: dict[str, Any], verdict: str, partition: int | None = None) -> Any:
    decision = ReviewDecision(
        payment_id=body["payment_id"],
        payer_account="alice",
        verdict=verdict,
        decided_by="ops",
        note="checked by phone",
        decided_at=world.clock(),
    )
    return handle_decision(decision.model_dump_json().encode(), partition, world.review)


def state(world: World, body: dict[str, Any]) -> Any:
    return world.payments[payment_key("alice", body["payment_id"])]


def test_an_approval_sends_the_payment_on_with_its_hold(world: World) -> None:
    body = held(world)
    outcome = decide(world, body, "APPROVE")
    (emit,) = outcome.emits
    assert emit.topic == FRAUD_SCORED and emit.partition == ALICE
    assert isinstance(emit.value, PaymentScored)
    assert emit.value.approval is not None and emit.value.approval.decided_by == "ops"
    assert emit.value.fraud.decision == "REVIEW"
    assert state(world, body).status == Status.SCORED
    assert world.balances["alice"].summary() == summary(available=7_000, held=3_000)


def test_a_denial_fails_it_and_releases_the_hold(world: World) -> None:
    body = held(world)
    (emit,) = decide(world, body, "DENY").emits
    assert emit.topic == PAYMENTS_FAILED and isinstance(emit.value, PaymentFailed)
    assert emit.value.code == "REVIEW_DENIED" and "checked by phone" in emit.value.reason
    assert state(world, body).status == Status.FAILED
    assert world.balances["alice"].summary() == summary(available=9_000, held=1_000)


def test_the_expiry_counts_only_once_it_is_due(world: World) -> None:
    body = held(world)
    assert decide(world, body, "EXPIRE").emits == ()
    assert state(world, body).status == Status.REVIEW
    world.clock.now += timedelta(seconds=world.settings.review_expiry_s)
    (emit,) = decide(world, body, "EXPIRE").emits
    assert isinstance(emit.value, PaymentFailed) and emit.value.code == "REVIEW_EXPIRED"
    assert world.balances["alice"].summary() == summary(available=9_000, held=1_000)


def test_the_first_decision_wins_and_a_replay_publishes_it_again(world: World) -> None:
    body = held(world)
    (first,) = decide(world, body, "DENY").emits
    world.balances["alice"] = world.balances["alice"].hold(body["payment_id"], 2_000)  # stale
    (again,) = decide(world, body, "APPROVE").emits
    assert again.topic == PAYMENTS_FAILED and again.payload() == first.payload()
    assert state(world, body).status == Status.FAILED
    assert world.balances["alice"].summary() == summary(available=9_000, held=1_000)


def test_a_decision_off_its_payers_partition_is_rerouted_first(world: World) -> None:
    body = held(world)
    outcome = decide(world, body, "APPROVE", partition=(ALICE + 1) % 8)
    (emit,) = outcome.emits
    assert (emit.topic, emit.partition, outcome.note) == (REVIEW_DECISIONS, ALICE, "rerouted")
    assert state(world, body).status == Status.REVIEW


def test_a_decision_for_no_held_payment_is_a_dead_letter(world: World) -> None:
    world.balances["alice"] = Balance(available=10_000)
    approved = request()
    handle_request(raw(approved), "alice", world.fraud)
    assert decide(world, approved, "APPROVE").dead_letter is not None
    assert decide(world, {"payment_id": str(uuid.uuid4())}, "DENY").dead_letter is not None
    garbage = handle_decision(b"{}", None, world.review)
    assert garbage.dead_letter is not None


def test_a_replayed_request_in_review_publishes_its_hold_again(world: World) -> None:
    body = held(world)
    (emit,) = handle_request(raw(body), "alice", world.fraud).emits
    assert emit.topic == PAYMENTS_REVIEW
    assert world.balances["alice"].held == 3_000

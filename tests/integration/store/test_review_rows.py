"""The sink and holds for review: a held payment has a REVIEW row that
``paystream review list`` reads, and its row only moves forward, whatever order
the sink reads its topics in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.base import outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import Approval, FraudCheck, PaymentFailed, PaymentRequested, PaymentScored
from schemas.records import SinkRecord
from schemas.review import ReviewHeld
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from services.store.reviews import held_for_review, status_of
from tests.integration.conftest import connect
from tests.integration.store.support import PAYEE, T0, settled

pytestmark = pytest.mark.integration
CHECK = FraudCheck(
    score=600, decision="REVIEW", rules_triggered=("VELOCITY_COUNT",), check_duration_us=40
)


def held(payer: str = "dora", amount: int = 500, at: datetime = T0) -> ReviewHeld:
    request = PaymentRequested(
        payment_id=uuid.uuid4(),
        payer_account=payer,
        payee_address=PAYEE,
        amount=amount,
        currency="PTUSD",
        requested_at=at,
    )
    return ReviewHeld(
        event_id=outcome_event_id("review", request.payment_id),
        request=request,
        fraud=CHECK,
        held_at=T0 + timedelta(seconds=1),
        expires_at=T0 + timedelta(days=1),
    )


def denied(h: ReviewHeld) -> PaymentFailed:
    code = FailureCode.REVIEW_DENIED
    return PaymentFailed(
        event_id=outcome_event_id("failed", h.request.payment_id),
        payment_id=h.request.payment_id,
        payer_account=h.request.payer_account,
        amount=h.request.amount,
        code=code,
        reason=FAILURE_REASONS[code],
        fraud=CHECK,
        requested_at=h.request.requested_at,
        failed_at=T0 + timedelta(minutes=5),
    )


def approved(h: ReviewHeld) -> PaymentScored:
    return PaymentScored(
        event_id=outcome_event_id("scored", h.request.payment_id),
        request=h.request,
        fraud=CHECK,
        scored_at=T0 + timedelta(minutes=2),
        approval=Approval(decided_by="ops", decided_at=T0 + timedelta(minutes=2)),
    )


def row(settings: Settings, payment_id: Any) -> tuple[Any, ...]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT status, error_code, payee_address, currency, review_expires_at"
            " FROM payments WHERE payment_id = %s",
            (payment_id,),
        ).fetchall()
    assert len(rows) == 1
    return tuple(rows[0])


async def test_a_held_payment_is_listed_until_it_is_decided(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    first, second = held(), held("erin", 700, T0 + timedelta(seconds=1))  # oldest first
    await ledger.apply("sink", [first, second])
    with connect(settings) as conn:
        listed = held_for_review(conn)
        assert [h.payment_id for h in listed] == [
            first.request.payment_id,
            second.request.payment_id,
        ]
        assert listed[0].expires_at == first.expires_at and listed[0].rules == ("VELOCITY_COUNT",)
        assert listed[0].fraud_score == 600
    await ledger.apply("sink", [denied(first)])
    with connect(settings) as conn:
        assert [h.payment_id for h in held_for_review(conn)] == [second.request.payment_id]
        assert status_of(conn, first.request.payment_id, "dora") == ("FAILED", "REVIEW_DENIED")


@pytest.mark.parametrize("order", ["in-order", "outcome-first", "one-batch"])
async def test_a_row_only_moves_forward(
    store: tuple[PostgresLedgerStore, Settings], order: str
) -> None:
    ledger, settings = store
    h = held()
    outcome = denied(h)
    orders: dict[str, list[list[SinkRecord]]] = {
        "in-order": [[h], [outcome]],
        "outcome-first": [[outcome], [h]],
        "one-batch": [[outcome, h]],
    }
    batches = orders[order]
    for batch in batches:
        await ledger.apply("sink", batch)
    assert row(settings, h.request.payment_id) == ("FAILED", "REVIEW_DENIED", PAYEE, "PTUSD", None)


async def test_an_approved_payment_moves_to_scored_then_settled(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    h = held()
    await ledger.apply("sink", [h])
    await ledger.apply("sink", [approved(h)])
    assert row(settings, h.request.payment_id)[:2] == ("SCORED", None)
    done = settled("dora", 500).model_copy(
        update={"payment_id": h.request.payment_id, "requested_at": T0}
    )
    late = approved(h).model_copy(update={"event_id": uuid.uuid4()})  # not deduplicated
    await ledger.apply("sink", [done])
    await ledger.apply("sink", [late])  # an approval read after the outcome changes nothing
    assert row(settings, h.request.payment_id)[:2] == ("SETTLED", None)

"""The sink and ``PAYMENT_ID_CONFLICT`` records: a conflict answers a request
that reused a payment id, not the payment; the payment's row must survive it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.base import conflict_event_id, outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import PaymentFailed, PaymentSettled
from schemas.records import SinkRecord
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from tests.integration.conftest import connect
from tests.integration.store.support import deposit, settled

pytestmark = pytest.mark.integration


def _conflict(first: PaymentSettled, at: Any, amount: int = 7) -> PaymentFailed:
    code = FailureCode.PAYMENT_ID_CONFLICT
    return PaymentFailed(
        event_id=conflict_event_id(first.payment_id, "another-digest"),
        payment_id=first.payment_id,
        payer_account="mallory",
        amount=amount,
        code=code,
        reason=FAILURE_REASONS[code],
        requested_at=at,
        failed_at=first.settled_at + timedelta(seconds=1),
    )


def _rows(settings: Settings, payment_id: Any) -> list[tuple[Any, ...]]:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT payer_account, amount, status, error_code, tx_hash FROM payments"
            " WHERE payment_id = %s",
            (payment_id,),
        ).fetchall()


@pytest.mark.parametrize("same_time", [True, False], ids=["same-requested-at", "other-time"])
@pytest.mark.parametrize("one_batch", [True, False], ids=["one-batch", "two-batches"])
async def test_a_conflict_record_leaves_the_first_payments_row_alone(
    store: tuple[PostgresLedgerStore, Settings], same_time: bool, one_batch: bool
) -> None:
    ledger, settings = store
    first = settled("carol", 300)
    at = first.requested_at if same_time else first.requested_at + timedelta(seconds=5)
    conflict = _conflict(first, at)
    assert conflict.event_id != outcome_event_id("failed", first.payment_id)
    batches: list[list[SinkRecord]] = (
        [[deposit("carol", 1_000), first, conflict]]
        if one_batch
        else [[deposit("carol", 1_000), first], [conflict]]
    )
    for batch in batches:
        await ledger.apply("sink", batch)
    assert _rows(settings, first.payment_id) == [("carol", 300, "SETTLED", None, "0xaa")]
    assert await ledger.apply("sink", [conflict]) == 0  # recorded as processed all the same
    assert await ledger.balance("carol") == 700
    assert await ledger.balance("mallory") == 0
    assert await ledger.ledger_total() == 0

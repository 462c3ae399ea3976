"""The gateway's read model: the stage rows the sink writes and the status
``paystream_payment_status`` makes of them, whatever order the sink reads a
reorged payment's records in; a replayed batch changes nothing."""

from __future__ import annotations

import itertools
import uuid

import pytest

from schemas.codes import FailureCode
from schemas.payments import PaymentFailed
from schemas.records import SinkRecord
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from tests.integration.conftest import connect
from tests.integration.store.support import T0, finalized, reorged, resettled, settled

pytestmark = pytest.mark.integration


def progress(settings: Settings, payment_id: uuid.UUID) -> tuple[str, dict[str, int]]:
    """The payment's status and its stages with their reorg counts."""
    with connect(settings) as conn:
        (status,) = conn.execute(
            "SELECT paystream_payment_status(%s)", (payment_id,)
        ).fetchone() or ("",)
        rows = conn.execute(
            "SELECT stage, coalesce((detail->>'reorgs')::int, 0) FROM payment_stages"
            " WHERE payment_id = %s",
            (payment_id,),
        ).fetchall()
    return str(status), dict(rows)


async def test_stages_follow_a_settlement_to_finality(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    assert progress(settings, uuid.uuid4()) == ("requested", {})
    paid = settled("ann", 1_000)
    await ledger.apply("sink", [paid])
    assert progress(settings, paid.payment_id) == ("settled", {"settled": 0})
    await ledger.apply("sink", [finalized(paid)])
    await ledger.apply("replayed", [paid, finalized(paid)])
    assert progress(settings, paid.payment_id) == ("finalized", {"settled": 0, "finalized": 0})


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_a_reorged_payment_is_settled_again_in_any_reading_order(
    store: tuple[PostgresLedgerStore, Settings], order: tuple[int, ...]
) -> None:
    ledger, settings = store
    paid = settled("bea", 1_000)
    records: list[SinkRecord] = [paid, reorged(paid), resettled(paid, block=12)]
    for i in order[:2]:
        await ledger.apply("sink", [records[i]])
    if 2 not in order[:2]:  # the undone settlement and its reorg: sent again
        assert progress(settings, paid.payment_id)[0] == "requested"
    await ledger.apply("sink", [records[order[2]]])
    status, stages = progress(settings, paid.payment_id)
    assert (status, stages["settled"], stages["reorged"]) == ("settled", 1, 1)


async def test_a_failure_ends_it_and_an_id_conflict_is_not_its_payments(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    payment_id = uuid.uuid4()

    def failed(code: FailureCode) -> PaymentFailed:
        return PaymentFailed(
            payment_id=payment_id,
            payer_account="cal",
            amount=10,
            code=code,
            reason="test",
            requested_at=T0,
            failed_at=T0,
        )

    await ledger.apply("sink", [failed(FailureCode.PAYMENT_ID_CONFLICT)])
    assert progress(settings, payment_id) == ("requested", {})
    await ledger.apply("sink", [failed(FailureCode.INSUFFICIENT_FUNDS)])
    assert progress(settings, payment_id) == ("rejected", {"rejected": 0})

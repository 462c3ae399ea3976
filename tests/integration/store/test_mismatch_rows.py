"""The sink and MISMATCHes: every reconciler alert (and the listener's
UNREPRESENTABLE) is logged; a payment held in
MISMATCH is listed (``paystream mismatches list``) until its resolution
arrives, which ends it with its row and a ``RESOLVED`` log row."""

from __future__ import annotations

import pytest

from schemas.chain import ReconciliationAlert
from schemas.payments import PaymentFailed
from services.settings import Settings
from services.store.mismatches import open_mismatches
from services.store.postgres import PostgresLedgerStore
from services.store.reviews import status_of
from tests.integration.conftest import connect
from tests.integration.store.support import resolved

pytestmark = pytest.mark.integration


def alert_for(outcome: PaymentFailed, held: bool) -> ReconciliationAlert:
    assert outcome.resolution is not None
    chain = outcome.resolution.chain
    return ReconciliationAlert(
        kind="MISMATCH",
        detail="chain paid 700 (fee 0) to ...",
        sequence=chain.sequence,
        tx_hash=chain.tx_hash,
        payment_id=outcome.payment_id,
        payer_account=outcome.payer_account,
        chain=chain,
        held=held,
    )


async def test_a_held_mismatch_is_listed_until_it_is_resolved(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    outcome = resolved("dan", 2_000, "REJECT", paid=700)
    assert isinstance(outcome, PaymentFailed) and outcome.resolution is not None
    ended = resolved("erin", 500, "REJECT", paid=600)
    assert isinstance(ended, PaymentFailed)
    unknown = ReconciliationAlert(kind="UNKNOWN_SEQUENCE", detail="paid on chain", sequence=9)
    odd = ReconciliationAlert(kind="UNREPRESENTABLE", detail="amount: too large", tx_hash="0x1")
    await ledger.apply("sink", [alert_for(outcome, True), alert_for(ended, False), unknown, odd])
    with connect(settings) as conn:
        (listed,) = open_mismatches(conn)
        assert (listed.payment_id, listed.payer_account) == (outcome.payment_id, "dan")
        assert (listed.chain.amount, listed.chain.sequence) == (
            700,
            outcome.resolution.chain.sequence,
        )
        assert status_of(conn, outcome.payment_id, "dan") is None  # no row while held
    await ledger.apply("sink", [outcome])
    with connect(settings) as conn:
        assert open_mismatches(conn) == []
        assert status_of(conn, outcome.payment_id, "dan") == ("FAILED", "SETTLEMENT_MISMATCH")
        kinds = conn.execute(
            "SELECT kind, count(*) FROM reconciliation_log GROUP BY kind ORDER BY kind"
        ).fetchall()
    assert [tuple(k) for k in kinds] == [
        ("MISMATCH", 2),
        ("RESOLVED", 1),
        ("UNKNOWN_SEQUENCE", 1),
        ("UNREPRESENTABLE", 1),
    ]

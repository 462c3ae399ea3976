"""A payment's row when a reorg undid its settlement: back to SUBMITTED until
it settles again, whatever order the sink reads the records in; a replay of
the undone settlement never brings it back; ``finalized_at`` once its
settlement is final, in any order; a FROZEN alert is logged."""

from __future__ import annotations

import itertools

import pytest

from schemas.chain import ReconciliationAlert
from schemas.records import SinkRecord
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from services.store.reviews import status_of
from tests.integration.conftest import connect
from tests.integration.store.support import finalized, reorged, resettled, settled

pytestmark = pytest.mark.integration


def _row(settings: Settings, record: object) -> tuple[str, int | None, int]:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT status, block_number, reorgs FROM payments WHERE payment_id = %s",
            (record.payment_id,),  # type: ignore[attr-defined]
        ).fetchone()
    assert row is not None
    return str(row[0]), row[1], int(row[2])


async def test_a_reorged_payment_is_submitted_until_it_settles_again(
    store: tuple[PostgresLedgerStore, Settings],
) -> None:
    ledger, settings = store
    paid = settled("gus", 1_000)
    await ledger.apply("sink", [paid])
    await ledger.apply("sink", [reorged(paid)])
    assert _row(settings, paid) == ("SUBMITTED", None, 1)
    await ledger.apply("replayed", [paid])  # the undone settlement, read again
    assert _row(settings, paid) == ("SUBMITTED", None, 1)
    await ledger.apply("sink", [resettled(paid, block=12)])
    assert _row(settings, paid) == ("SETTLED", 12, 1)
    with connect(settings) as conn:
        assert status_of(conn, paid.payment_id, "gus") == ("SETTLED", None)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_any_reading_order_ends_settled_in_the_new_block(
    store: tuple[PostgresLedgerStore, Settings], order: tuple[int, ...]
) -> None:
    ledger, settings = store
    paid = settled("hal", 1_000)
    records: list[SinkRecord] = [paid, reorged(paid), resettled(paid, block=12)]
    for i in order:
        await ledger.apply("sink", [records[i]])
    assert _row(settings, paid) == ("SETTLED", 12, 1)
    again = settled("hal", 2_000)
    await ledger.apply("sink", [again, reorged(again), resettled(again, block=13)])
    assert _row(settings, again) == ("SETTLED", 13, 1)


async def test_a_frozen_account_is_logged(store: tuple[PostgresLedgerStore, Settings]) -> None:
    ledger, settings = store
    alert = ReconciliationAlert(kind="FROZEN", detail="owes 500", payer_account="ivy")
    assert await ledger.apply("sink", [alert]) == 1
    with connect(settings) as conn:
        kinds = conn.execute("SELECT kind FROM reconciliation_log").fetchall()
    assert ("FROZEN",) in kinds


def _final_at(settings: Settings, record: object) -> object:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT finalized_at FROM payments WHERE payment_id = %s",
            (record.payment_id,),  # type: ignore[attr-defined]
        ).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("final_first", [False, True])
async def test_a_final_settlement_keeps_its_time_of_finality(
    store: tuple[PostgresLedgerStore, Settings], final_first: bool
) -> None:
    ledger, settings = store
    paid = settled("jo", 1_000)
    final = finalized(paid)
    for batch in ([final], [paid]) if final_first else ([paid], [final]):
        await ledger.apply("sink", batch)
    assert _row(settings, paid) == ("SETTLED", paid.block_number, 0)
    assert _final_at(settings, paid) == final.finalized_at
    await ledger.apply("sink", [paid, final])  # replayed, with other records: no change
    assert await ledger.balance("jo") == -1_000  # one settlement booked, finality books nothing
    await ledger.apply("sink", [reorged(paid)])  # deeper than finality: no longer final
    assert _final_at(settings, paid) is None
    await ledger.apply("replayed", [final])
    assert _final_at(settings, paid) is None

"""Migrations up and down on a fresh database, dry runs, partitions,
append-only tables."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from services.settings import Settings
from services.store.schema import downgrade, upgrade
from tests.integration.conftest import connect

pytestmark = pytest.mark.integration

TABLES = {
    "users",
    "payment_methods",
    "merchants",
    "payment_providers",
    "payments",
    "fraud_checks",
    "transaction_metrics",
    "ledger_entries",
    "processed_events",
    "reconciliation_log",
    "audit_log",
    "payment_claims",
}


def _tables(settings: Settings) -> set[str]:
    with connect(settings, settings.pg_database) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        ).fetchall()
    return {r[0] for r in rows}


def _has_counter(settings: Settings) -> bool:
    with connect(settings, settings.pg_database) as conn:
        row = conn.execute("SELECT to_regclass('settlement_counter') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_upgrade_then_downgrade_then_upgrade_again(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    assert _tables(fresh_db) >= TABLES
    assert _has_counter(fresh_db)
    downgrade(fresh_db, "0001")
    assert "payment_claims" not in _tables(fresh_db) and not _has_counter(fresh_db)
    downgrade(fresh_db, "base")
    assert _tables(fresh_db) == {"alembic_version"}
    upgrade(fresh_db)
    assert _tables(fresh_db) >= TABLES
    assert _has_counter(fresh_db)


def test_dry_runs_print_sql_and_change_nothing(fresh_db: Settings) -> None:
    up = upgrade(fresh_db, dry_run=True)
    assert up is not None and "CREATE TABLE ledger_entries" in up
    assert "CREATE TABLE payment_claims" in up and "CREATE SEQUENCE settlement_counter" in up
    assert _tables(fresh_db) == set()
    upgrade(fresh_db)
    down = downgrade(fresh_db, "base", dry_run=True)
    assert down is not None and "DROP TABLE ledger_entries" in down
    assert _tables(fresh_db) >= TABLES


def test_payments_land_in_their_monthly_partition(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    now = datetime.now(UTC)
    with connect(fresh_db, fresh_db.pg_database) as conn:
        assert conn.execute("SELECT paystream_ensure_payment_partitions(2)").fetchone() == (0,)
        assert conn.execute("SELECT paystream_ensure_payment_partitions(4)").fetchone() == (2,)
        conn.execute(
            "INSERT INTO payments (payment_id, created_at, payer_account, payee_address, amount,"
            " currency, status, t_start) VALUES (gen_random_uuid(), %s, 'alice', '0xab', %s,"
            " 'PTUSD', 'REQUESTED', %s)",
            (now, 2**80, now),
        )
        row = conn.execute("SELECT tableoid::regclass::text, amount FROM payments").fetchone()
    assert row == (f"payments_{now:%Y_%m}", 2**80)


def test_ledger_and_audit_are_append_only(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    with connect(fresh_db, fresh_db.pg_database) as conn:
        conn.execute(
            "INSERT INTO ledger_entries (event_id, account, kind, amount, currency) "
            "VALUES (gen_random_uuid(), 'alice', 'deposit', 5, 'PTUSD')"
        )
        for statement in ("UPDATE ledger_entries SET amount = 6", "DELETE FROM ledger_entries"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)

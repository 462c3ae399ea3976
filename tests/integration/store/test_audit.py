"""The audit chain detects an edited, deleted or inserted row."""

from __future__ import annotations

import pytest

from services.settings import Settings
from services.store.audit import append, verify
from services.store.schema import upgrade
from tests.integration.conftest import connect

pytestmark = pytest.mark.integration


def test_an_untouched_chain_verifies_and_a_tampered_one_does_not(fresh_db: Settings) -> None:
    upgrade(fresh_db)
    with connect(fresh_db, fresh_db.pg_database) as conn:
        for i in range(5):
            append(conn, "ops", "merchant.fee_changed", f"merchant-{i}", {"fee_bps": 100 + i})
        assert verify(conn) == []

        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET detail = '{\"fee_bps\": 1}' WHERE seq = 3")
        assert [b.seq for b in verify(conn)] == [3]

        conn.execute("DELETE FROM audit_log WHERE seq = 4")
        assert [b.seq for b in verify(conn)] == [3, 5]

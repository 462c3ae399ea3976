"""Fixtures shared by the PostgreSQL store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from tests.integration.store.support import postgres_store


@pytest_asyncio.fixture
async def store(fresh_db: Settings) -> AsyncIterator[tuple[PostgresLedgerStore, Settings]]:
    """The ledger store on a fresh, migrated database and its settings."""
    ledger, pool = postgres_store(fresh_db)
    await pool.open()  # type: ignore[attr-defined]
    yield ledger, fresh_db
    await pool.close()  # type: ignore[attr-defined]

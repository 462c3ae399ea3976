"""The CursorStore port's contract, against the in-memory fake and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from schemas.cursor import Cursor, SeenBlock, SeenEvent
from services.bootstrap import redis_client
from services.cache.cursor import RedisCursorStore
from services.ports import CursorStore
from services.settings import Settings
from tests.support.fakes import MemoryCursorStore


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CursorStore]:
    if request.param == "memory":
        yield MemoryCursorStore()
        return
    settings: Settings = request.getfixturevalue("stack_healthy")
    client = redis_client(settings)
    key = f"test:cursor:{uuid.uuid4().hex}"
    yield RedisCursorStore(client, key)
    await client.delete(key)
    await client.aclose()


async def test_a_new_store_has_no_cursor_and_keeps_the_last_one_saved(store: CursorStore) -> None:
    assert await store.load() is None
    first = Cursor(last_block=5)
    second = Cursor(
        last_block=9,
        recent=[
            SeenBlock(
                number=9,
                hash="0x09",
                events=[SeenEvent(tx_hash="0xaa", log_index=1, amount=3, sequence=7)],
            )
        ],
    )
    await store.save(first)
    await store.save(second)
    assert await store.load() == second

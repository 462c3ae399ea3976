"""Redis through redis-py's asyncio client from the composition root."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.bootstrap import redis_client
from services.settings import Settings

pytestmark = pytest.mark.integration


async def test_set_get_with_ttl_and_atomic_set_if_absent(stack_healthy: Settings) -> None:
    client = redis_client(stack_healthy)
    key = f"test:idem:{uuid.uuid4().hex}"
    try:
        assert await client.set(key, b"first", nx=True, px=2000) is True
        assert await client.set(key, b"second", nx=True, px=2000) is None
        assert await client.get(key) == b"first"
        ttl_ms = await client.pttl(key)
        assert 0 < ttl_ms <= 2000
        await asyncio.sleep(2.2)
        assert await client.get(key) is None
    finally:
        await client.delete(key)
        await client.aclose()

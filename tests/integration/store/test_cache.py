"""Cache-aside on a private Redis that is stopped mid-test: reads keep working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devtools.harness.isolated import free_port
from devtools.stack.base import StatePaths
from devtools.stack.redis import RedisService
from services.bootstrap import pg_pool, redis_client
from services.cache.aside import TTL_S, CacheAside
from services.settings import Settings
from services.store.reads import Reads
from services.store.schema import upgrade
from tests.integration.conftest import connect

pytestmark = pytest.mark.integration


def test_reads_are_cached_and_survive_redis_going_down(fresh_db: Settings, tmp_path: Path) -> None:
    settings = fresh_db.model_copy(
        update={"state_dir": tmp_path, "redis_port": free_port(), "connect_timeout_s": 1.0}
    )
    redis = RedisService(settings, StatePaths(settings))
    StatePaths(settings).ensure()
    redis.start()
    upgrade(settings)
    with connect(settings, settings.pg_database) as conn:
        conn.execute("INSERT INTO users (account_id, email) VALUES ('alice', 'a@example.test')")

    async def scenario() -> tuple[int, int, int]:
        client = redis_client(settings)
        cache = CacheAside(client)
        try:
            async with pg_pool(settings) as pool:
                reads = Reads(pool, cache)
                first = await reads.user("alice")
                second = await reads.user("alice")
                assert first == second and first is not None and first.email == "a@example.test"
                assert 0 < await client.ttl("paystream:users:alice") <= TTL_S["users"]
                loads_while_up = reads.loads
                redis.stop()  # Redis goes away mid-test
                third = await reads.user("alice")
                assert third == first
                assert await reads.user("nobody") is None
                return loads_while_up, reads.loads, cache.fallbacks
        finally:
            await client.aclose()

    try:
        loads_up, loads_total, fallbacks = asyncio.run(scenario())
    finally:
        redis.stop()
    assert loads_up == 1  # the second read came from Redis
    assert loads_total == 3 and fallbacks >= 2  # afterwards PostgreSQL answered

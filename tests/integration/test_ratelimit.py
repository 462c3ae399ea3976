"""The GCRA rate limiter on the real Redis: a burst, then one request per
interval; each caller its own limit; no Redis means no verdict."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.harness.isolated import free_port
from services.bootstrap import redis_client
from services.cache.ratelimit import Limit, RateLimiter
from services.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_burst_then_the_rate(stack_healthy: Settings) -> None:
    client = redis_client(stack_healthy)
    limiter = RateLimiter(client)
    caller, limit = f"test-{uuid.uuid4().hex}", Limit(rate_per_s=10.0, burst=5)
    try:
        verdicts = [await limiter.check(caller, limit) for _ in range(6)]
        assert all(v is not None for v in verdicts)
        assert [v.allowed for v in verdicts if v] == [True] * 5 + [False]
        assert [v.remaining for v in verdicts if v][:5] == [4, 3, 2, 1, 0]
        refused = verdicts[5]
        assert refused is not None and 0 < refused.retry_after_s <= 0.1
        assert refused.retry_after_header == "1"
        other = await limiter.check(f"{caller}-other", limit)
        assert other is not None and other.allowed
        await asyncio.sleep(refused.retry_after_s + 0.01)
        again = await limiter.check(caller, limit)
        assert again is not None and again.allowed and again.remaining == 0
    finally:
        await client.aclose()


async def test_no_redis_no_verdict(stack_healthy: Settings) -> None:
    nowhere = stack_healthy.model_copy(update={"redis_port": free_port(stack_healthy.host)})
    client = redis_client(nowhere)
    try:
        assert await RateLimiter(client).check("anyone", Limit(1.0, 1)) is None
    finally:
        await client.aclose()

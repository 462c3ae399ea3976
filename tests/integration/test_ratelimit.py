"""The GCRA rate limiter on the real Redis: a burst, then one request per
interval; each caller its own limit; an API key's cached holder found and its
request counted in one script; no Redis means no verdict."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.harness.isolated import free_port
from schemas.merchants import Merchant
from services.bootstrap import redis_client
from services.cache.aside import entry_name
from services.cache.ratelimit import KeyCheck, Limit, RateLimiter
from services.settings import Settings
from services.store.keys import KeyHolder, digest, new_key

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


def _holder(key_id: str, api_key: str, **changes: object) -> KeyHolder:
    merchant = Merchant(
        merchant_id="m-test", name="Test", payout_address="0x" + "ab" * 20, fee_bps=0
    )
    fields: dict[str, object] = {
        "key_id": key_id,
        "key_hash": digest(api_key).hex(),
        "scopes": ("payments:read",),
        "revoked": False,
        "merchant": merchant,
    }
    return KeyHolder.model_validate(fields | changes)


async def test_a_cached_key_is_found_and_counted_in_one_script(stack_healthy: Settings) -> None:
    """check_key counts a request only for the holder's own key, live and
    carrying the scope, against the holder's limit (or the default)."""
    client = redis_client(stack_healthy)
    limiter, default = RateLimiter(client), Limit(rate_per_s=1000.0, burst=50)
    key_id, api_key = new_key()
    entry = entry_name("api_keys", key_id, f"test-{uuid.uuid4().hex}")

    async def check(presented: str = api_key, scope: str = "payments:read") -> KeyCheck:
        found = await limiter.check_key(entry, key_id, digest(presented).hex(), scope, default)
        assert found is not None
        return found

    try:
        assert await check() == KeyCheck(None, None)  # not cached: nothing counted

        # The holder's own limit: 3 at once, then one a second (at the default's
        # 1,000/s a 4th check more than 1 ms after the first would be allowed).
        holder = _holder(key_id, api_key, rate_per_s=1.0, burst=3)
        await client.set(entry, holder.model_dump_json())
        _, other_key = new_key()
        for refused in (await check(other_key), await check(scope="payments:write")):
            assert refused.holder is not None and refused.verdict is None
        counted = [(await check()).verdict for _ in range(4)]
        assert [v.allowed for v in counted if v] == [True, True, True, False]
        assert {v.limit for v in counted if v} == {3}  # the holder's burst

        await client.set(entry, _holder(key_id, api_key, revoked=True).model_dump_json())
        assert (await check()).verdict is None

        limiter.prefix = f"test-{uuid.uuid4().hex}"  # a fresh bucket, the default limit
        await client.set(entry, _holder(key_id, api_key).model_dump_json())
        fresh = (await check()).verdict
        assert fresh is not None and fresh.allowed and (fresh.limit, fresh.remaining) == (50, 49)
        assert KeyHolder.model_validate_json((await check()).holder or "") == _holder(
            key_id, api_key
        )
    finally:
        await client.delete(entry)
        await client.aclose()


async def test_no_redis_no_key_check(stack_healthy: Settings) -> None:
    nowhere = stack_healthy.model_copy(update={"redis_port": free_port(stack_healthy.host)})
    client = redis_client(nowhere)
    try:
        found = await RateLimiter(client).check_key("e", "k", "00", "payments:read", Limit(1, 1))
        assert found is None
    finally:
        await client.aclose()

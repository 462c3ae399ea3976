"""Per-key rate limits on Redis: GCRA (the generic cell rate algorithm), one
Redis key per limited caller holding its theoretical arrival time (TAT).

A caller limited to ``rate`` requests per second with bursts of ``burst`` may
send ``burst`` requests at once, then one every ``1 / rate`` seconds. One Lua
script decides and updates atomically, on Redis's own clock, so every gateway
process shares one limit per key. When Redis does not answer, the limiter
answers ``None`` and the caller decides (the gateway admits: Redis is a cache,
and the idempotency records that make creation safe live in PostgreSQL)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("paystream.cache")

# KEYS[1]: the caller's TAT (microseconds); ARGV: interval, tolerance (us).
# Returns {allowed (0|1), remaining, retry_after_us, reset_us}. Times are
# written with %.0f: Lua's default number format would round them.
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
  'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000) + 1))
local remaining = math.floor((now - allow_at) / interval)
return {1, remaining, 0, new_tat - now}
"""


@dataclass(frozen=True)
class Limit:
    rate_per_s: float
    burst: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int  # the burst: requests allowed at once
    remaining: int  # requests allowed now, after this one
    retry_after_s: float  # 0 when allowed
    reset_s: float  # until the full burst is available again

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = "paystream:ratelimit") -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(GCRA)

    async def check(self, caller: str, limit: Limit) -> Verdict | None:
        """Count one request of ``caller``; None when Redis did not answer."""
        interval_us = max(1, round(1_000_000 / limit.rate_per_s))
        tolerance_us = interval_us * limit.burst
        try:
            allowed, remaining, retry_us, reset_us = await self.script(
                keys=[f"{self.prefix}:{caller}"], args=[interval_us, tolerance_us]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked (Redis: %s); admitting", exc)
            return None
        return Verdict(
            allowed=bool(allowed),
            limit=limit.burst,
            remaining=int(remaining),
            retry_after_s=int(retry_us) / 1_000_000,
            reset_s=int(reset_us) / 1_000_000,
        )

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

# gcra(tat key, rate per second, burst) -> {allowed (0|1), remaining,
# retry_after_us, reset_us}, on Redis's clock in microseconds. Times are
# written with %.0f: Lua's default number format would round them.
_GCRA = """
local function gcra(key, rate, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local interval = math.max(1, math.floor(1000000 / rate + 0.5))
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    return {0, 0, allow_at - now, tat - now}
  end
  redis.call('SET', key, string.format('%.0f', new_tat),
    'PX', string.format('%.0f', math.ceil((new_tat - now) / 1000) + 1))
  return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
end
"""
# KEYS[1]: the caller's TAT; ARGV: rate per second, burst.
GCRA = _GCRA + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))"
# The API key's cached holder and its limit in one round trip. KEYS[1]: the
# holder's cache entry (KeyHolder JSON), KEYS[2]: the key's TAT; ARGV: the
# presented key's SHA-256 (hex), the route's scope, the default rate and burst.
# Returns {} when the entry is not cached, {holder} when the key is not one
# that may call the route (not counted), else {holder, verdict..., burst}.
KEY_GCRA = (
    _GCRA
    + """
local cached = redis.call('GET', KEYS[1])
if not cached then return {} end
local holder = cjson.decode(cached)
local scoped = false
for _, scope in ipairs(holder.scopes) do
  if scope == ARGV[2] then scoped = true end
end
if holder.key_hash ~= ARGV[1] or holder.revoked or not scoped then return {cached} end
local rate = holder.rate_per_s
if rate == cjson.null then rate = tonumber(ARGV[3]) end
local burst = holder.burst
if burst == cjson.null then burst = tonumber(ARGV[4]) end
local verdict = gcra(KEYS[2], rate, burst)
return {cached, verdict[1], verdict[2], verdict[3], verdict[4], burst}
"""
)


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


@dataclass(frozen=True)
class KeyCheck:
    """A key's cached holder (its JSON; None: not cached) and, when the key
    may call the route, its request counted (``verdict``)."""

    holder: str | None
    verdict: Verdict | None


class RateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = "paystream:ratelimit") -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(GCRA)
        self.key_script = client.register_script(KEY_GCRA)

    async def check(self, caller: str, limit: Limit) -> Verdict | None:
        """Count one request of ``caller``; None when Redis did not answer."""
        try:
            found = await self.script(
                keys=[f"{self.prefix}:{caller}"], args=[limit.rate_per_s, limit.burst]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked (Redis: %s); admitting", exc)
            return None
        return _verdict(found, limit.burst)

    async def check_key(
        self, entry: str, caller: str, key_sha256: str, scope: str, default: Limit
    ) -> KeyCheck | None:
        """In one round trip: the cached holder ``entry`` of API key ``caller``
        and, if the presented key's hash is the holder's, the key is live and it
        has ``scope``, one request counted against the holder's limit (or
        ``default``). None when Redis did not answer."""
        try:
            found = await self.key_script(
                keys=[entry, f"{self.prefix}:{caller}"],
                args=[key_sha256, scope, default.rate_per_s, default.burst],
            )
        except (RedisError, OSError) as exc:
            log.warning("API key and rate limit not checked (Redis: %s)", exc)
            return None
        if not found:
            return KeyCheck(None, None)
        holder = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
        if len(found) == 1:
            return KeyCheck(holder, None)
        return KeyCheck(holder, _verdict(found[1:5], int(found[5])))


def _verdict(found: list[int], burst: int) -> Verdict:
    allowed, remaining, retry_us, reset_us = found
    return Verdict(
        allowed=bool(allowed),
        limit=burst,
        remaining=int(remaining),
        retry_after_s=int(retry_us) / 1_000_000,
        reset_s=int(reset_us) / 1_000_000,
    )

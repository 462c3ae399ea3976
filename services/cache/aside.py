"""Cache-aside on Redis with per-kind TTLs. Redis is only a cache: when it does
not answer (within the client's socket timeout), reads go to the source and
nothing fails."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import RedisError

log = logging.getLogger("paystream.cache")

TTL_S = {
    "users": 300,
    "payment_methods": 600,
    "fraud_rules": 3600,
    "metrics": 60,
    "api_keys": 60,  # a key and its merchant (revoking a key also clears its entry)
}

M = TypeVar("M", bound=BaseModel)
PREFIX = "paystream"


def entry_name(kind: str, key: str, prefix: str = PREFIX) -> str:
    """The Redis key of a cached value (one naming for readers and invalidators)."""
    return f"{prefix}:{kind}:{key}"


class CacheAside:
    def __init__(self, client: aioredis.Redis, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.fallbacks = 0  # reads served by the source because Redis failed

    async def get(
        self, kind: str, key: str, model: type[M], load: Callable[[], Awaitable[M | None]]
    ) -> M | None:
        name = entry_name(kind, key, self.prefix)
        try:
            raw = await self.client.get(name)
        except (RedisError, OSError) as exc:
            self.fallbacks += 1
            log.warning("cache unavailable (%s); reading %s from the source", exc, kind)
            return await load()
        if raw is not None:
            return model.model_validate_json(raw)
        value = await load()
        if value is not None:
            try:
                await self.client.set(name, value.model_dump_json(), ex=TTL_S[kind])
            except (RedisError, OSError):
                self.fallbacks += 1
        return value

    async def invalidate(self, kind: str, key: str) -> None:
        try:
            await self.client.delete(entry_name(kind, key, self.prefix))
        except (RedisError, OSError):
            self.fallbacks += 1

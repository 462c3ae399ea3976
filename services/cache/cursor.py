"""The chain listener's cursor in Redis (losing it only causes re-emission,
which the reconciler recognises)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from schemas.cursor import Cursor
from services.errors import CacheUnavailable


class RedisCursorStore:
    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    async def load(self) -> Cursor | None:
        try:
            raw = await self.client.get(self.key)
        except RedisError as exc:
            raise CacheUnavailable(f"reading the listener cursor: {exc}") from exc
        return Cursor.model_validate_json(raw) if raw else None

    async def save(self, cursor: Cursor) -> None:
        try:
            await self.client.set(self.key, cursor.model_dump_json())
        except RedisError as exc:
            raise CacheUnavailable(f"saving the listener cursor: {exc}") from exc

"""What the gateway's routes are handed: its settings and adapters
(PostgreSQL pool, Redis cache-aside, Kafka publisher, ETA, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from paystream.gateway.eta import Eta
from paystream.gateway.publisher import Publisher
from services.bootstrap import open_pool, redis_client
from services.cache.aside import CacheAside
from services.cache.ratelimit import RateLimiter
from services.metrics.catalogue import GatewayMetrics
from services.settings import Settings
from services.store.gateway import GatewayStore


@dataclass
class Gateway:
    settings: Settings
    pool: AsyncConnectionPool
    cache: CacheAside
    store: GatewayStore
    publisher: Publisher
    eta: Eta
    metrics: GatewayMetrics
    limiter: RateLimiter


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway's adapters, open (the ETA's inputs refreshed in the background)."""
    pool = await open_pool(settings)
    redis = redis_client(settings)
    publisher = Publisher(settings)
    store = GatewayStore(pool)
    eta = Eta(settings, store)
    refresher = asyncio.create_task(eta.run(), name="gateway-eta")
    try:
        yield Gateway(
            settings=settings,
            pool=pool,
            cache=CacheAside(redis),
            store=store,
            publisher=publisher,
            eta=eta,
            metrics=GatewayMetrics.create(),
            limiter=RateLimiter(redis),
        )
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await asyncio.to_thread(publisher.close)
        await redis.aclose()
        await pool.close()

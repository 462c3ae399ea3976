"""What the gateway's routes are handed: its settings and adapters
(PostgreSQL pool, Redis cache-aside, Kafka publisher, ETA, metrics, and the
Prometheus and Alertmanager client of the ops page)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from paystream.gateway.answers import Answers
from paystream.gateway.batching import Batcher
from paystream.gateway.eta import Eta
from paystream.gateway.publisher import Publisher
from services.bootstrap import open_pool, redis_client
from services.cache.aside import CacheAside
from services.cache.ratelimit import RateLimiter
from services.metrics.catalogue import GatewayMetrics
from services.metrics.monitor import Monitor
from services.settings import Settings
from services.store.gateway import GatewayStore, KeyedPayment


@dataclass
class Gateway:
    settings: Settings
    pool: AsyncConnectionPool
    cache: CacheAside
    store: GatewayStore
    claims: Batcher[KeyedPayment, tuple[bool, bool]]  # new keyed payments, in batches
    answers: Answers  # keyed requests' answers, stored in batches
    publisher: Publisher
    eta: Eta
    metrics: GatewayMetrics
    limiter: RateLimiter
    monitor: Monitor  # Prometheus and Alertmanager, for the ops page


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway's adapters, open (the ETA's inputs refreshed in the background).
    Its PostgreSQL connections autocommit: each of its writes is one statement."""
    pool = await open_pool(settings, autocommit=True)
    redis = redis_client(settings)
    publisher = Publisher(settings)
    store = GatewayStore(pool)
    claims = Batcher(store.claim_and_record, "gateway-claims", key=_payment_id)
    answers = Answers(store)
    eta = Eta(settings, store)
    monitor = Monitor(
        settings.ops_prometheus_url or f"http://{settings.host}:{settings.prometheus_port}",
        settings.ops_alertmanager_url or f"http://{settings.host}:{settings.alertmanager_port}",
    )
    refresher = asyncio.create_task(eta.run(), name="gateway-eta")
    try:
        yield Gateway(
            settings=settings,
            pool=pool,
            cache=CacheAside(redis),
            store=store,
            claims=claims,
            answers=answers,
            publisher=publisher,
            eta=eta,
            metrics=GatewayMetrics.create(),
            limiter=RateLimiter(redis),
            monitor=monitor,
        )
    finally:
        await monitor.close()
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await publisher.close()
        await claims.close()
        await answers.close()
        await redis.aclose()
        await pool.close()


def _payment_id(new: KeyedPayment) -> object:
    return new.payment.payment_id

"""The merchant gateway for tests: a real uvicorn server on a free port in a
thread of the test process, on the settings' PostgreSQL, Redis and Kafka; and
merchants with keys and mandates made the way the CLI makes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from devtools.harness.database import scratch_database
from devtools.harness.isolated import free_port
from devtools.harness.merchant import MerchantClient, register_merchant
from paystream.gateway.app import create_app
from schemas.api import SCOPES, Scope
from services.bootstrap import pg_connection
from services.settings import Settings
from services.store.keys import grant_mandate
from streams.ops.topics import create_topics

Shop = MerchantClient  # a merchant with its key, as the tests call it


def new_shop(
    settings: Settings,
    scopes: tuple[Scope, ...] = SCOPES,
    fee_bps: int = 0,
    limit: tuple[float, int] | None = None,
) -> Shop:
    """A merchant with a key (``limit``: its rate per second and burst)."""
    return register_merchant(settings, [], "test shop", scopes, fee_bps, limit)


def grant(settings: Settings, account: str, shop: Shop, max_amount: int | None = None) -> None:
    with pg_connection(settings) as conn:
        grant_mandate(conn, account, shop.merchant.merchant_id, max_amount, "tests")


@contextmanager
def gateway_settings(base: Settings) -> Iterator[Settings]:
    """Settings on a scratch database with topics of their own. No worker reads
    them, so admission by lag is off (an hour) unless a test sets it."""
    with scratch_database(base, "test") as scratch:
        name = scratch.pg_database
        settings = scratch.model_copy(
            update={"topic_prefix": f"{name}-", "app_id": name, "admission_lag_max_s": 3600.0}
        )
        create_topics(settings)
        yield settings


@contextmanager
def gateway_server(settings: Settings) -> Iterator[httpx.Client]:
    """A running gateway and an HTTP client pointed at it."""
    port = free_port(settings.host)
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://{settings.host}:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)

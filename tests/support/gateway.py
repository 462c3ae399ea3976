"""The merchant gateway for tests: a real uvicorn server on a free port in a
thread of the test process, on the settings' PostgreSQL, Redis and Kafka; and
merchants with keys and mandates made the way the CLI makes them."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from psycopg import sql

from devtools.harness.isolated import free_port
from paystream.gateway.app import create_app
from schemas.api import SCOPES, Scope
from schemas.merchants import Merchant
from services.bootstrap import pg_connection, prepare_schema
from services.settings import Settings
from services.store.keys import grant_mandate, issue_key
from services.store.merchants import create_merchant, new_merchant_id
from streams.ops.topics import create_topics


@dataclass(frozen=True)
class Shop:
    merchant: Merchant
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_shop(settings: Settings, scopes: tuple[Scope, ...] = SCOPES, fee_bps: int = 0) -> Shop:
    merchant = Merchant(
        merchant_id=new_merchant_id(),
        name="test shop",
        payout_address="0x" + secrets.token_hex(20),
        fee_bps=fee_bps,
    )
    with pg_connection(settings) as conn, conn.transaction():
        create_merchant(conn, merchant, "tests")
        api_key = issue_key(conn, merchant.merchant_id, scopes, "tests")
    return Shop(merchant, api_key)


def grant(settings: Settings, account: str, shop: Shop, max_amount: int | None = None) -> None:
    with pg_connection(settings) as conn:
        grant_mandate(conn, account, shop.merchant.merchant_id, max_amount, "tests")


@contextmanager
def gateway_settings(base: Settings) -> Iterator[Settings]:
    """Settings on a fresh, migrated database with topics of their own (dropped after)."""
    from tests.integration.conftest import connect

    name = f"test_{uuid.uuid4().hex[:12]}"
    with connect(base) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = base.model_copy(
        update={"pg_database": name, "topic_prefix": f"{name}-", "app_id": name}
    )
    try:
        prepare_schema(settings)
        create_topics(settings)
        yield settings
    finally:
        with connect(base) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


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

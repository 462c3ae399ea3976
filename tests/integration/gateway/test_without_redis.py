"""Redis is only a cache: with no Redis answering, the gateway checks keys
against PostgreSQL and keeps serving, and ``/readyz`` says Redis is down."""

from __future__ import annotations

import pytest

from devtools.harness.isolated import free_port
from services.settings import Settings
from tests.support.gateway import gateway_server, gateway_settings, grant, new_shop

pytestmark = pytest.mark.integration


def test_keys_are_checked_in_postgresql_when_redis_is_down(stack_healthy: Settings) -> None:
    with gateway_settings(stack_healthy) as settings:
        nowhere = settings.model_copy(update={"redis_port": free_port(settings.host)})
        shop = new_shop(nowhere)
        grant(nowhere, "no-cache-payer", shop)
        with gateway_server(nowhere) as api:
            sent = {"payer_account": "no-cache-payer", "amount": 10, "currency": "PTUSD"}
            created = api.post("/v1/payments", json=sent, headers=shop.headers)
            assert created.status_code == 202, created.text
            got = api.get(f"/v1/payments/{created.json()['id']}", headers=shop.headers)
            assert got.status_code == 200
            bad = {"Authorization": f"Bearer {shop.api_key[:-1]}_"}
            assert api.get("/v1/payments", headers=bad).status_code == 401
            ready = api.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"kafka": True, "postgresql": True, "redis": False}

"""API keys: made, rotated and revoked by the CLI, effective at once through
the Redis cache, and never kept or shown in plain text after creation."""

from __future__ import annotations

import json
import logging
import secrets
import uuid

import httpx
import pytest
import redis
from click.testing import CliRunner
from psycopg import sql

from paystream.cli import cli
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import pg_connection
from services.cache.aside import entry_name
from services.settings import Settings
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def run(settings: Settings, *args: str) -> str:
    env = {"PAYSTREAM_PG_DATABASE": settings.pg_database}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def register(settings: Settings) -> dict[str, str]:
    address = "0x" + secrets.token_hex(20)
    made = json.loads(
        run(settings, "merchants", "create", "Keys Ltd", "--payout-address", address, "--json")
    )
    assert made["api_key"].startswith("psk_") and made["scopes"] == [
        "payments:write",
        "payments:read",
        "reviews:write",
    ]
    return {"merchant_id": made["merchant_id"], "api_key": made["api_key"]}


def test_revoked_and_rotated_keys_stop_at_once(api: httpx.Client, gw_settings: Settings) -> None:
    shop = register(gw_settings)
    old = shop["api_key"]
    assert api.get("/v1/payments", headers=bearer(old)).status_code == 200
    cached = redis.Redis.from_url(gw_settings.redis_url)
    key_id = old.split("_")[1]
    assert cached.exists(entry_name("api_keys", key_id)), "the key's look-up is cached"

    rotated = json.loads(run(gw_settings, "merchants", "rotate-key", shop["merchant_id"], "--json"))
    assert rotated["revoked"] == [key_id]
    refused = api.get("/v1/payments", headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "api_key_revoked"
    new = rotated["api_key"]
    assert api.get("/v1/payments", headers=bearer(new)).status_code == 200

    run(gw_settings, "merchants", "revoke-key", shop["merchant_id"])
    assert api.get("/v1/payments", headers=bearer(new)).json()["error"]["code"] == "api_key_revoked"
    tampered = new[:-1] + ("A" if new[-1] != "A" else "B")
    assert api.get("/v1/payments", headers=bearer(tampered)).status_code == 401


def test_api_keys_appear_nowhere_in_plain_text(
    api: httpx.Client, gw_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shop = register(gw_settings)
    keys = [shop["api_key"]]
    keys.append(
        json.loads(run(gw_settings, "merchants", "rotate-key", shop["merchant_id"], "--json"))[
            "api_key"
        ]
    )
    account = f"keys-{uuid.uuid4().hex[:8]}"
    run(gw_settings, "mandates", "grant", account, shop["merchant_id"])
    sent = {"payer_account": account, "amount": 5, "currency": "PTUSD"}
    assert api.post("/v1/payments", json=sent, headers=bearer(keys[1])).status_code == 202
    api.post("/v1/payments", json=sent, headers=bearer(keys[0]))  # revoked
    api.get("/v1/payments", headers=bearer(keys[1] + "x"))  # malformed

    with pg_connection(gw_settings) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        dump = "\n".join(
            str(
                conn.execute(
                    sql.SQL("SELECT {}::text FROM {} t").format(
                        sql.Identifier("t"), sql.Identifier(name)
                    )
                ).fetchall()
            )
            for (name,) in tables
        )
    assert "api_keys" in {name for (name,) in tables}
    cache = redis.Redis.from_url(gw_settings.redis_url)
    cached = "\n".join(
        f"{name!r} {cache.get(name)!r}" for name in cache.scan_iter("paystream:*", count=1000)
    )
    topic = "\n".join(
        (m.value() or b"").decode()
        for m in read_all(gw_settings, gw_settings.topic(PAYMENTS_REQUESTED))
    )
    secrets_of = [key.split("_", 2)[2] for key in keys]
    for where, text in {
        "database": dump,
        "redis": cached,
        "topic": topic,
        "logs": caplog.text,
    }.items():
        for secret in secrets_of:
            assert secret not in text, f"an API key's secret is in the {where}"
    assert "api_key.created" in dump  # the audit log has the event, not the key

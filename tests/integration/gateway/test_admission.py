"""Admission: a key past its rate limit gets 429 with Retry-After and the
RateLimit headers, then is served again after it; with the worker stopped and
its lag past ``admission_lag_max_s``, payments get 429 ``engine_busy`` (nothing
published) until a worker has read the backlog down."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import prepare_schema
from services.settings import Settings
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.gateway import gateway_server, grant, new_shop
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def test_a_burst_past_the_keys_limit_waits_for_retry_after(
    api: httpx.Client, gw_settings: Settings
) -> None:
    shop = new_shop(gw_settings, limit=(2.0, 3))
    answers = [api.get("/v1/payments", headers=shop.headers) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limited"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    other = new_shop(gw_settings, limit=(2.0, 3))  # one key's limit is its own
    assert api.get("/v1/payments", headers=other.headers).status_code == 200
    time.sleep(retry_after)
    assert api.get("/v1/payments", headers=shop.headers).status_code == 200
    assert (
        'paystream_gateway_admission_total{decision="rate_limited"} 1.0' in api.get("/metrics").text
    )


def test_payments_wait_while_the_worker_lags(fresh_db: Settings, tmp_path: Path) -> None:
    pipeline = make_pipeline(
        fresh_db,
        tmp_path,
        pg_database=fresh_db.pg_database,
        admission_lag_max_s=2.0,
        lag_interval_s=1.0,
    )
    settings = pipeline.settings
    prepare_schema(settings)
    shop = new_shop(settings)
    grant(settings, "lagging-payer", shop)
    sent = {"payer_account": "lagging-payer", "amount": 10, "currency": "PTUSD"}
    with gateway_server(settings) as api:
        accepted = 0
        deadline = time.monotonic() + 30
        while True:  # nobody reads them: the lag grows past 2 s
            busy = api.post("/v1/payments", json=sent, headers=shop.headers)
            if busy.status_code != 202 or time.monotonic() > deadline:
                break
            accepted += 1
            time.sleep(0.5)
        assert busy.status_code == 429, busy.text
        assert busy.json()["error"]["code"] == "engine_busy"
        assert 1 <= int(busy.headers["Retry-After"]) <= 300
        assert accepted >= 1
        published_before = len(read_all(settings, settings.topic(PAYMENTS_REQUESTED)))
        assert published_before == accepted, "a refused payment was published"

        with pipeline.worker():
            deadline = time.monotonic() + 120
            while True:
                again = api.post("/v1/payments", json=sent, headers=shop.headers)
                if again.status_code != 429 or time.monotonic() > deadline:
                    break
                time.sleep(1)
        assert again.status_code == 202, again.text
        records = [
            json.loads(m.value() or b"{}")
            for m in read_all(settings, settings.topic(PAYMENTS_REQUESTED))
        ]
        assert str(uuid.UUID(again.json()["id"])) in {r["payment_id"] for r in records}
        assert len(records) == published_before + 1

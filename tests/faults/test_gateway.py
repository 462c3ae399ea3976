"""Idempotency keys under concurrency: 50 POSTs with one key at once create
one payment (one ``payments.requested`` record, one payment row) and all get
its answer. ``make faults`` runs 1,000 rounds."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import pg_connection
from services.settings import Settings
from tests.faults.plan import MARKS, SCALE
from tests.support.gateway import Shop, gateway_server, gateway_settings, grant, new_shop
from tests.support.kafka import read_all

pytestmark = MARKS
ROUNDS = 10 if SCALE == 1 else 100 * SCALE
CONCURRENT = 50


@pytest.fixture(scope="module")
def gw(stack_healthy: Settings) -> Iterator[tuple[Settings, httpx.Client]]:
    with gateway_settings(stack_healthy) as settings, gateway_server(settings) as client:
        yield settings, client


async def _round(client: httpx.AsyncClient, shop: Shop, payer: str) -> set[str]:
    headers = shop.headers | {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = {"payer_account": payer, "amount": 100, "currency": "PTUSD"}
    answers = await asyncio.gather(
        *(client.post("/v1/payments", json=body, headers=headers) for _ in range(CONCURRENT))
    )
    assert {a.status_code for a in answers} == {202}, [
        a.text for a in answers if a.status_code != 202
    ]
    bodies = {a.text for a in answers}
    assert len(bodies) == 1, "every attempt gets the first answer"
    return {json.loads(a.text)["id"] for a in answers}


async def _rounds(base_url: str, shop: Shop, payer: str) -> list[str]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        ids: list[str] = []
        for _ in range(ROUNDS):
            ids += await _round(client, shop, payer)
        return ids


def test_concurrent_posts_with_one_key_create_one_payment(
    gw: tuple[Settings, httpx.Client],
) -> None:
    settings, api = gw
    shop = new_shop(settings, limit=(1e6, 1_000_000))  # the race, not the rate limit
    payer = f"race-{uuid.uuid4().hex[:8]}"
    grant(settings, payer, shop)

    ids = asyncio.run(_rounds(str(api.base_url), shop, payer))

    assert len(ids) == len(set(ids)) == ROUNDS
    published = Counter(
        json.loads(m.value() or b"{}")["payment_id"]
        for m in read_all(settings, settings.topic(PAYMENTS_REQUESTED))
    )
    assert {i: published[i] for i in ids} == dict.fromkeys(ids, 1)
    with pg_connection(settings) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT payment_id) FROM gateway_payments"
            " WHERE merchant_id = %s",
            (shop.merchant.merchant_id,),
        ).fetchone()
    assert rows == (ROUNDS, ROUNDS)

"""Review decisions through the API: a merchant lists its payments held for
review, approves one (it settles and becomes final) and denies one (it fails
``review_denied``), each with one outcome; another merchant can neither see
nor decide them."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.harness.chain import fund_payers
from devtools.harness.collect import collect
from devtools.harness.process import SinkProcess
from services.bootstrap import pg_connection, prepare_schema
from services.settings import Settings
from tests.integration.gateway.test_end_to_end import followed
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.gateway import gateway_server, grant, new_shop

pytestmark = pytest.mark.integration
DEPOSIT = 100_000


def held(api: httpx.Client, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        found = api.get("/v1/reviews", headers=headers).json()["data"]
        if len(found) >= count or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.5)


def test_a_merchant_approves_and_denies_its_held_payments(
    fresh_db: Settings, tmp_path: Path
) -> None:
    # Any payment above 5,000 in a minute is held for review.
    pipeline = make_pipeline(
        fresh_db, tmp_path, pg_database=fresh_db.pg_database, fraud_velocity_max_amount=5_000
    )
    settings = pipeline.settings
    prepare_schema(settings)
    shop, other = new_shop(settings), new_shop(settings)
    payer = f"rev-{uuid.uuid4().hex[:8]}"
    grant(settings, payer, shop)
    with (
        pipeline.worker() as worker,
        SinkProcess(settings, tmp_path / "sink.log", pipeline.env),
        gateway_server(settings) as api,
    ):
        asyncio.run(fund_payers(settings, [payer], DEPOSIT))
        worker.wait_credited([payer], DEPOSIT, timeout_s=90)
        sent = {"payer_account": payer, "amount": 6_000, "currency": "PTUSD"}
        ids = [
            api.post("/v1/payments", json=sent, headers=shop.headers).json()["id"] for _ in range(2)
        ]
        in_review = held(api, shop.headers, 2)
        assert {p["id"] for p in in_review} == set(ids)
        assert all(p["status"] == "review" and p["review_expires_at"] for p in in_review)
        assert api.get("/v1/reviews", headers=other.headers).json()["data"] == []
        approve, deny = ids
        stranger = api.post(
            f"/v1/reviews/{approve}", json={"decision": "deny"}, headers=other.headers
        )
        assert stranger.status_code == 404

        approved = api.post(
            f"/v1/reviews/{approve}",
            json={"decision": "approve", "note": "known customer"},
            headers=shop.headers,
        )
        denied = api.post(f"/v1/reviews/{deny}", json={"decision": "deny"}, headers=shop.headers)
        assert approved.status_code == denied.status_code == 202, approved.text
        assert approved.json()["decision"] == "approve"

        ended = followed(api, shop.headers, ids, timeout_s=120)
        assert ended[approve]["status"] == "finalized"
        assert ended[deny]["status"] == "failed"
        assert ended[deny]["failure"]["code"] == "review_denied"
        outcomes = collect(settings, set(ids), timeout_s=60)  # the topics: one outcome each
        assert set(outcomes.settled) == {approve} and set(outcomes.failed) == {deny}
        assert outcomes.duplicates == 0
        again = api.post(f"/v1/reviews/{deny}", json={"decision": "approve"}, headers=shop.headers)
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_in_review"
    with pg_connection(settings) as conn:
        actions = conn.execute(
            "SELECT action, actor FROM audit_log WHERE entity = ANY(%s) ORDER BY seq", (ids,)
        ).fetchall()
    actor = f"merchant:{shop.merchant_id}:"
    assert [a for a, _ in actions] == ["review.approve", "review.deny"]
    assert all(who.startswith(actor) for _, who in actions)

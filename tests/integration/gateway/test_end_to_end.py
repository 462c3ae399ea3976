"""A merchant follows its payments through the gateway while the real worker,
ledger sink and chain settle them: each ends finalized (with its transaction)
or refused with a code, and its stages come in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.harness.chain import fund_payers
from devtools.harness.process import SinkProcess
from services.bootstrap import prepare_schema
from services.settings import Settings
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.gateway import gateway_server, grant, new_shop

pytestmark = pytest.mark.integration
DEPOSIT = 100_000
ORDER = ["requested", "scored", "submitted", "settled", "finalized"]


def followed(
    api: httpx.Client, headers: dict[str, str], ids: list[str], timeout_s: float
) -> dict[str, Any]:
    """The payments once each has ended (finalized, failed or rejected)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = {i: api.get(f"/v1/payments/{i}", headers=headers).json() for i in ids}
        if all(p["status"] in ("finalized", "failed", "rejected") for p in seen.values()):
            return seen
        time.sleep(1)
    pending = {
        i: p["status"]
        for i, p in seen.items()
        if p["status"] not in ("finalized", "failed", "rejected")
    }
    raise AssertionError(f"payments not ended in {timeout_s} s: {pending}")


def test_a_merchant_sees_its_payments_end(fresh_db: Settings, tmp_path: Path) -> None:
    # A database of its own: its sink's ledger is not the stack's (which reconciles
    # against the stack's own contracts).
    pipeline = make_pipeline(fresh_db, tmp_path, pg_database=fresh_db.pg_database)
    prepare_schema(pipeline.settings)
    settings = pipeline.settings
    shop = new_shop(settings, fee_bps=250)
    payers = [f"gwe2e-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    broke = f"gwe2e-{uuid.uuid4().hex[:6]}-broke"
    for account in [*payers, broke]:
        grant(settings, account, shop)
    with (
        pipeline.worker() as worker,
        SinkProcess(settings, tmp_path / "sink.log", pipeline.env),
        gateway_server(settings) as api,
    ):
        asyncio.run(fund_payers(settings, payers, DEPOSIT))
        worker.wait_credited(payers, DEPOSIT, timeout_s=90)
        sent = [
            {"payer_account": p, "amount": 1_000 + i, "currency": "PTUSD"}
            for i, p in enumerate(payers * 4)
        ]
        sent.append({"payer_account": broke, "amount": 50, "currency": "PTUSD"})
        ids = []
        for body in sent:
            created = api.post("/v1/payments", json=body, headers=shop.headers)
            assert created.status_code == 202, created.text
            ids.append(created.json()["id"])

        ended = followed(api, shop.headers, ids, timeout_s=180)

        refused = ended.pop(ids[-1])
        assert refused["status"] == "rejected"
        assert refused["failure"]["code"] == "insufficient_funds"
        for payment in ended.values():
            assert payment["status"] == "finalized", payment
            assert payment["settlement"]["tx_hash"].startswith("0x")
            assert payment["settlement"]["block_number"] > 0
            stages = payment["stages"]
            assert list(stages) == ORDER, stages
            assert (
                stages["requested"] <= stages["scored"] <= stages["settled"] <= stages["finalized"]
            )
        deadline = time.monotonic() + 60
        while True:  # once stage latencies are measured, a new payment has an ETA
            fresh = api.post("/v1/payments", json=sent[0], headers=shop.headers).json()
            if fresh["eta"] is not None or time.monotonic() > deadline:
                break
            time.sleep(settings.lag_interval_s)
        assert fresh["next_stage"] == "scored" and fresh["eta"] is not None
        assert fresh["eta"] >= fresh["created"]

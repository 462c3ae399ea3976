"""A merchant follows its payments through the gateway while the real worker,
ledger sink and chain settle them: each ends finalized (with its transaction)
or refused with a code, and its stages come in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.harness.chain import fund_payers
from devtools.harness.process import SinkProcess, WorkerProcess
from services.bootstrap import pg_connection, prepare_schema
from services.settings import Settings
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.gateway import Shop, gateway_server, grant, new_shop

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
        _balances_match_the_engine_and_the_ledger(api, shop, settings, worker, payers[0])
        deadline = time.monotonic() + 60
        while True:  # once stage latencies are measured, a new payment has an ETA
            fresh = api.post("/v1/payments", json=sent[0], headers=shop.headers).json()
            if fresh["eta"] is not None or time.monotonic() > deadline:
                break
            time.sleep(settings.lag_interval_s)
        assert fresh["next_stage"] == "scored" and fresh["eta"] is not None
        assert fresh["eta"] >= fresh["created"]


def _balances_match_the_engine_and_the_ledger(
    api: httpx.Client, shop: Shop, settings: Settings, worker: WorkerProcess, payer: str
) -> None:
    live = api.get(f"/v1/balances/{payer}", headers=shop.headers)
    assert live.status_code == 200, live.text
    engine = worker.balance(payer)
    assert engine is not None
    assert live.json() == {"object": "balance", **engine}
    now = datetime.now(UTC)
    with pg_connection(settings) as conn:
        (booked,) = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = %s", (payer,)
        ).fetchone() or (0,)
        (first,) = conn.execute(
            "SELECT min(created_at) FROM ledger_entries WHERE account = %s", (payer,)
        ).fetchone() or (None,)
    assert booked == DEPOSIT - engine["settled"]  # every settlement is booked by now
    then = api.get(
        f"/v1/balances/{payer}", params={"as_of": now.isoformat()}, headers=shop.headers
    ).json()
    assert then == {
        "object": "balance",
        "account": payer,
        "as_of": now.isoformat().replace("+00:00", "Z"),
        "ledger_balance": booked,
    }
    before = api.get(
        f"/v1/balances/{payer}",
        params={"as_of": (first - timedelta(seconds=1)).isoformat()},
        headers=shop.headers,
    ).json()
    assert before["ledger_balance"] == 0
    stranger = new_shop(settings)
    assert api.get(f"/v1/balances/{payer}", headers=stranger.headers).status_code == 404

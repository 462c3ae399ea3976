"""The whole pipeline on the real stack: deposits on chain, requests on Kafka,
settlement on anvil, outcomes on the settlement topics."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from eth_account import Account

from devtools.harness.chain import fund_payers
from devtools.harness.collect import collect
from devtools.harness.load import LoadGenerator, new_payees, request_body
from devtools.harness.process import WorkerProcess
from schemas.onchain import SettledEvent
from schemas.topics import PAYMENTS_DLQ, PAYMENTS_REQUESTED
from services.bootstrap import chain_client, kafka_producer_config
from services.settings import Settings
from tests.integration.pipeline.conftest import BLOCKED_PAYEE, Pipeline
from tests.support.kafka import consume

pytestmark = pytest.mark.integration

DEPOSIT = 1_000_000_000  # 1,000.00 per payer


async def chain_settlements(settings: Settings) -> set[tuple[int, str, int]]:
    client = await chain_client(settings)
    events = await client.events(0, await client.block_number())
    return {
        (e.payment.sequence, e.payment.payee, e.payment.amount)
        for e in events
        if isinstance(e, SettledEvent)
    }


def settled_set(records: dict[str, dict[str, Any]]) -> set[tuple[int, str, int]]:
    return {
        (int(r["sequence"]), str(r["payee_address"]), int(r["amount"])) for r in records.values()
    }


def test_1000_payments_across_100_payers(pipeline: Pipeline, running: WorkerProcess) -> None:
    settings = pipeline.settings
    payers = [f"e2e-{uuid.uuid4().hex[:6]}-{i}" for i in range(100)]
    asyncio.run(fund_payers(settings, payers, DEPOSIT))
    running.wait_credited(payers, DEPOSIT, timeout_s=90)
    load = LoadGenerator(settings, payers, new_payees(60), max_amount=5_000_000)

    sent = load.publish(None, count=1_000)
    outcomes = collect(settings, set(sent.ids), timeout_s=240)

    assert len(outcomes.settled) + len(outcomes.failed) == 1_000, "a payment had no outcome"
    assert outcomes.duplicates == 0
    assert outcomes.failed == {}, {r["code"] for r in outcomes.failed.values()}
    assert asyncio.run(chain_settlements(settings)) == settled_set(outcomes.settled)
    paid: dict[str, int] = {}
    for record in outcomes.settled.values():
        payer = str(record["payer_account"])
        paid[payer] = paid.get(payer, 0) + int(str(record["amount"]))
    windows = running.get_json("/windows/")["stages"]
    assert windows["settled"]["60s"]["count"] > 0
    assert windows["scored"]["60s"]["latency_ms"]["p99"] is not None
    assert "paystream_stage_records_total" in running.get_text("/metrics")
    for payer in payers:
        assert running.balance(payer) == {
            "account": payer,
            "available": DEPOSIT - paid[payer],
            "held": 0,
            "settled": paid[payer],
            "owed": 0,
        }


def test_bad_inputs_fail_with_codes_and_poison_goes_to_the_dlq(
    pipeline: Pipeline, running: WorkerProcess
) -> None:
    settings = pipeline.settings
    payer = f"rej-{uuid.uuid4().hex[:6]}"
    asyncio.run(fund_payers(settings, [payer], 10_000))
    running.wait_credited([payer], 10_000, timeout_s=90)
    payee = "0x" + "ab" * 20  # not checksummed
    cases: dict[str, dict[str, Any]] = {
        "INSUFFICIENT_FUNDS": request_body(payer, _fresh(), 20_000),
        "FRAUD_BLOCKED": request_body(payer, BLOCKED_PAYEE, 10),
        "INVALID_SCHEMA": {**request_body(payer, _fresh(), 10), "surprise": True},
        "INVALID_AMOUNT": {**request_body(payer, _fresh(), 10), "amount": 10.5},
        "INVALID_ADDRESS": {**request_body(payer, _fresh(), 10), "payee_address": payee},
    }
    good = request_body(payer, _fresh(), 1_000)
    producer = Producer(kafka_producer_config(settings))
    topic = settings.topic(PAYMENTS_REQUESTED)
    for body in [*cases.values(), good, good]:  # the good one twice: a repeated request
        producer.produce(topic, key=payer.encode(), value=json.dumps(body).encode())
    producer.produce(topic, key=payer.encode(), value=b"\x00poison")
    after = request_body(payer, _fresh(), 500)  # the pipeline keeps going after the poison
    producer.produce(topic, key=payer.encode(), value=json.dumps(after).encode())
    assert producer.flush(30) == 0

    ids = {str(b["payment_id"]) for b in [*cases.values(), good, after]}
    outcomes = collect(settings, ids, timeout_s=120)

    codes = {str(r["payment_id"]): r["code"] for r in outcomes.failed.values()}
    assert {code: codes[str(body["payment_id"])] for code, body in cases.items()} == {
        code: code for code in cases
    }
    assert set(outcomes.settled) == {str(good["payment_id"]), str(after["payment_id"])}
    assert outcomes.duplicates == 0
    (dead,) = [
        json.loads(m.value() or b"{}")
        for m in consume(settings, settings.topic(PAYMENTS_DLQ), 1, timeout_s=30)
    ]
    assert base64.b64decode(dead["value_b64"]) == b"\x00poison"
    assert dead["source_topic"] == topic and dead["offset"] >= 0
    assert running.balance(payer) == {
        "account": payer,
        "available": 10_000 - 1_500,
        "held": 0,
        "settled": 1_500,
        "owed": 0,
    }


def _fresh() -> str:
    return str(Account.create().address)

"""The merchant API through HTTP against the real PostgreSQL, Redis and Kafka:
payments published once Kafka has them, coded errors, mandates, idempotency
keys, pagination and isolation between merchants."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from eth_utils.address import to_checksum_address

from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import pg_connection
from services.settings import Settings
from tests.support.gateway import Shop, grant, new_shop
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


def body(payer: str, amount: float | str = 1_000, **extra: Any) -> dict[str, Any]:
    return {"payer_account": payer, "amount": amount, "currency": "PTUSD", **extra}


def payer() -> str:
    return f"gw-{uuid.uuid4().hex[:10]}"


def published(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The requests on payments.requested, by payment id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for msg in read_all(settings, settings.topic(PAYMENTS_REQUESTED)):
        record = json.loads(msg.value() or b"{}")
        record["_key"] = (msg.key() or b"").decode()
        found.setdefault(record["payment_id"], []).append(record)
    return found


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    detail = response.json()["error"]
    assert set(detail) == {"code", "message", "param"}
    return response.status_code, detail["code"], detail["param"]


def test_a_payment_is_answered_once_kafka_has_it(api: httpx.Client, gw_settings: Settings) -> None:
    shop = new_shop(gw_settings, fee_bps=100)
    account = payer()
    grant(gw_settings, account, shop)
    sent = body(account, "2500", metadata={"order": "A-1"})

    created = api.post("/v1/payments", json=sent, headers=shop.headers)

    assert created.status_code == 202, created.text
    payment = created.json()
    payee = to_checksum_address(shop.merchant.payout_address)
    assert payment["status"] == "requested"
    assert (payment["amount"], payment["currency"], payment["payer_account"]) == (
        2500,
        "PTUSD",
        account,
    )
    assert payment["payee_address"] == payee and payment["metadata"] == {"order": "A-1"}
    assert set(payment["stages"]) == {"requested"} and payment["next_stage"] == "scored"
    (record,) = published(gw_settings)[payment["id"]]
    assert record["_key"] == account and record["merchant_id"] == shop.merchant.merchant_id
    assert (record["payee_address"], record["amount"]) == (payee, 2500)
    fetched = api.get(f"/v1/payments/{payment['id']}", headers=shop.headers)
    assert fetched.status_code == 200 and fetched.json()["id"] == payment["id"]


def test_errors_are_coded(api: httpx.Client, gw_settings: Settings) -> None:
    shop = new_shop(gw_settings)
    account = payer()
    grant(gw_settings, account, shop)
    post = api.post
    assert error(post("/v1/payments", json=body(account))) == (
        401,
        "authentication_required",
        None,
    )
    bogus = {"Authorization": "Bearer psk_0123456789abcdef_" + "x" * 43}
    assert error(post("/v1/payments", json=body(account), headers=bogus))[:2] == (
        401,
        "invalid_api_key",
    )
    cases = {
        "unknown field": (body(account, surprise=1), (422, "invalid_schema", "surprise")),
        "float amount": (body(account, 10.5), (422, "invalid_amount", "amount")),
        "negative amount": (body(account, -3), (422, "invalid_amount", "amount")),
        "bad currency": (body(account, currency="usd!"), (422, "unknown_currency", "currency")),
        "other payee": (
            body(account, payee_address="0x" + "12" * 20),
            (422, "not_merchant_payee", "payee_address"),
        ),
    }
    for name, (sent, expected) in cases.items():
        assert error(post("/v1/payments", json=sent, headers=shop.headers)) == expected, name
    not_json = post("/v1/payments", content=b"{nope", headers=shop.headers)
    assert error(not_json)[:2] == (400, "invalid_json")
    huge = body(account, metadata={"x": "y" * 70_000})
    assert error(post("/v1/payments", json=huge, headers=shop.headers))[:2] == (
        413,
        "body_too_large",
    )
    chunked = post("/v1/payments", content=iter([b"{" + b" " * 70_000]), headers=shop.headers)
    assert "content-length" not in chunked.request.headers
    assert error(chunked)[:2] == (413, "body_too_large")
    own = body(account, payee_address=shop.merchant.payout_address.upper().replace("0X", "0x"))
    assert post("/v1/payments", json=own, headers=shop.headers).status_code == 202
    missing = api.get(f"/v1/payments/{uuid.uuid4()}", headers=shop.headers)
    assert error(missing)[:2] == (404, "resource_missing")
    assert "Traceback" not in missing.text


@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "idempotency-key"])
def test_a_merchant_collects_only_under_a_mandate(
    api: httpx.Client, gw_settings: Settings, keyed: bool
) -> None:
    """With an Idempotency-Key a new request is claimed, checked and recorded
    in one statement: it must draw the same lines as the request without one."""
    shop = new_shop(gw_settings)
    account = payer()

    def post(amount: int) -> httpx.Response:
        key = {"Idempotency-Key": f"order-{uuid.uuid4()}"} if keyed else {}
        return api.post("/v1/payments", json=body(account, amount), headers=shop.headers | key)

    assert error(post(1_000)) == (403, "no_mandate", "payer_account")

    grant(gw_settings, account, shop, max_amount=5_000)
    assert error(post(5_001)) == (403, "amount_over_mandate", "amount")
    accepted = post(5_000)
    assert accepted.status_code == 202

    with pg_connection(gw_settings) as conn:
        from services.store.keys import revoke_mandate

        assert revoke_mandate(conn, account, shop.merchant.merchant_id, "tests")
    assert error(post(10))[:2] == (403, "no_mandate")
    records = published(gw_settings)
    assert [r["amount"] for r in records[accepted.json()["id"]]] == [5_000]
    mine = [r for rs in records.values() for r in rs if r["payer_account"] == account]
    assert len(mine) == 1  # nothing refused was published


def test_an_idempotency_key_replays_the_first_answer(
    api: httpx.Client, gw_settings: Settings
) -> None:
    shop, other = new_shop(gw_settings), new_shop(gw_settings)
    account = payer()
    grant(gw_settings, account, shop)
    grant(gw_settings, account, other)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}

    first = api.post("/v1/payments", json=body(account, 700), headers=shop.headers | key)
    again = api.post("/v1/payments", json=body(account, "700"), headers=shop.headers | key)
    changed = api.post("/v1/payments", json=body(account, 701), headers=shop.headers | key)
    elsewhere = api.post("/v1/payments", json=body(account, 700), headers=other.headers | key)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert error(changed) == (409, "idempotency_key_reuse", "Idempotency-Key")
    assert elsewhere.status_code == 202 and elsewhere.json()["id"] != first.json()["id"]
    records = published(gw_settings)
    assert len(records[first.json()["id"]]) == 1 and len(records[elsewhere.json()["id"]]) == 1


def test_keyed_requests_arriving_together_each_get_their_own_answer(
    api: httpx.Client, gw_settings: Settings
) -> None:
    """New keyed requests are claimed and recorded in shared statements: each
    gets its own answer, a key sent twice at once is one payment, and each
    request's mandate is checked."""
    shop = new_shop(gw_settings)
    covered, capped, without = payer(), payer(), payer()
    grant(gw_settings, covered, shop)
    grant(gw_settings, capped, shop, max_amount=500)
    keys = [f"order-{uuid.uuid4()}" for _ in range(24)]
    sends = [(key, covered, 100 + i) for i, key in enumerate(keys)]
    sends += [(keys[i], covered, 100 + i) for i in range(4)]  # the same requests again
    sends += [(f"over-{uuid.uuid4()}", capped, 501), (f"none-{uuid.uuid4()}", without, 10)]

    def send(key: str, account: str, amount: int) -> httpx.Response:
        headers = shop.headers | {"Idempotency-Key": key}
        return api.post("/v1/payments", json=body(account, amount), headers=headers)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda s: send(*s), sends))
    accepted = answers[:28]
    assert [a.status_code for a in accepted] == [202] * 28
    ids = [a.json()["id"] for a in accepted]
    assert ids[24:] == ids[:4] and len(set(ids)) == 24
    assert [a.json()["amount"] for a in accepted[:24]] == [100 + i for i in range(24)]
    assert error(answers[28])[:2] == (403, "amount_over_mandate")
    assert error(answers[29])[:2] == (403, "no_mandate")
    records = published(gw_settings)
    assert all(len(records[payment_id]) == 1 for payment_id in set(ids))


def test_a_refused_request_leaves_its_key_free_and_an_answer_is_kept(
    api: httpx.Client, gw_settings: Settings
) -> None:
    shop = new_shop(gw_settings)
    account = payer()
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    refused = api.post("/v1/payments", json=body(account, 300), headers=shop.headers | key)
    assert error(refused)[:2] == (403, "no_mandate")

    grant(gw_settings, account, shop)
    fixed = api.post("/v1/payments", json=body(account, 301), headers=shop.headers | key)
    assert fixed.status_code == 202 and "Idempotent-Replayed" not in fixed.headers

    with pg_connection(gw_settings) as conn:
        from services.store.keys import revoke_mandate

        assert revoke_mandate(conn, account, shop.merchant.merchant_id, "tests")
    replayed = api.post("/v1/payments", json=body(account, 301), headers=shop.headers | key)
    assert replayed.status_code == 202 and replayed.text == fixed.text


def test_lists_page_newest_first_and_filter_by_status(
    api: httpx.Client, gw_settings: Settings
) -> None:
    shop = new_shop(gw_settings)
    account = payer()
    grant(gw_settings, account, shop)
    ids = [
        api.post("/v1/payments", json=body(account, 10 + i), headers=shop.headers).json()["id"]
        for i in range(5)
    ]
    with pg_connection(gw_settings) as conn:  # the sink's row of a refusal
        conn.execute(
            "INSERT INTO payment_stages (payment_id, stage, at, detail) VALUES (%s, 'rejected',"
            ' now(), \'{"code": "INSUFFICIENT_FUNDS", "reason": "too low"}\')',
            (ids[1],),
        )

    pages: list[list[str]] = []
    cursor: dict[str, Any] = {}
    while True:
        page = api.get("/v1/payments", params={"limit": 2, **cursor}, headers=shop.headers)
        assert page.status_code == 200
        pages.append([p["id"] for p in page.json()["data"]])
        if not page.json()["has_more"]:
            break
        cursor = {"starting_after": pages[-1][-1]}
    newest_first = list(reversed(ids))
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    rejected = api.get("/v1/payments", params={"status": "rejected"}, headers=shop.headers)
    (only,) = rejected.json()["data"]
    assert only["id"] == ids[1] and only["status"] == "rejected"
    assert only["failure"] == {
        "code": "insufficient_funds",
        "engine_code": "INSUFFICIENT_FUNDS",
        "reason": "too low",
    }
    assert only["next_stage"] is None and only["eta"] is None


def test_a_merchant_never_sees_another_merchants_payments(
    api: httpx.Client, gw_settings: Settings
) -> None:
    mine, theirs = new_shop(gw_settings), new_shop(gw_settings)
    account = payer()
    grant(gw_settings, account, mine)
    created = api.post("/v1/payments", json=body(account), headers=mine.headers).json()

    assert error(api.get(f"/v1/payments/{created['id']}", headers=theirs.headers))[:2] == (
        404,
        "resource_missing",
    )
    listed = api.get("/v1/payments", headers=theirs.headers).json()
    assert listed["data"] == [] and listed["has_more"] is False
    cursor = api.get(
        "/v1/payments", params={"starting_after": created["id"]}, headers=theirs.headers
    )
    assert error(cursor)[:2] == (400, "invalid_cursor")
    collect = api.post("/v1/payments", json=body(account), headers=theirs.headers)
    assert error(collect)[:2] == (403, "no_mandate")


def test_scopes_limit_what_a_key_may_do(api: httpx.Client, gw_settings: Settings) -> None:
    reader: Shop = new_shop(gw_settings, scopes=("payments:read",))
    account = payer()
    grant(gw_settings, account, reader)
    refused = api.post("/v1/payments", json=body(account), headers=reader.headers)
    assert error(refused)[:2] == (403, "insufficient_scope")
    assert api.get("/v1/payments", headers=reader.headers).status_code == 200


def test_health_docs_and_metrics(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"kafka": True, "postgresql": True, "redis": True}
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/payments", "/v1/payments/{payment_id}"} <= set(spec["paths"])
    schemes = spec["components"]["securitySchemes"].values()
    assert [s["scheme"] for s in schemes] == ["bearer"]
    assert "swagger" in api.get("/docs").text.lower()
    api.get(f"/v1/payments/{uuid.uuid4()}")
    metrics = api.get("/metrics").text
    assert (
        'paystream_gateway_requests_total{method="GET",route="/v1/payments/{payment_id}",'
        'status="401"}' in metrics
    )
    assert "paystream_gateway_request_duration_seconds_bucket" in metrics

"""The demo's merchant: registered with an API key, granted mandates by some
payers, it collects payments through the gateway's REST API (with
idempotency keys) and follows each until it ends. Its key is written to
``.state/demo-merchant.json`` (mode 600) for trying ``docs/api.md`` by hand."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from schemas.merchants import Merchant
from services.bootstrap import pg_connection
from services.settings import Settings
from services.store.keys import grant_mandate, issue_key
from services.store.merchants import create_merchant, new_merchant_id

ENDED = ("finalized", "failed", "rejected")


def register(settings: Settings, payers: list[str]) -> tuple[str, str]:
    """A new merchant with an API key and mandates from ``payers``: (id, key)."""
    merchant = Merchant(
        merchant_id=new_merchant_id(),
        name="Demo Shop",
        payout_address="0x" + secrets.token_hex(20),
        fee_bps=100,
    )
    with pg_connection(settings) as conn, conn.transaction():
        create_merchant(conn, merchant, "demo")
        api_key = issue_key(conn, merchant.merchant_id, ("payments:write", "payments:read"), "demo")
        for payer in payers:
            grant_mandate(conn, payer, merchant.merchant_id, None, "demo")
    path = settings.state_dir / "demo-merchant.json"
    secret = json.dumps({"merchant_id": merchant.merchant_id, "api_key": api_key})
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(secret)
    path.chmod(0o600)  # a file left by an earlier run
    return merchant.merchant_id, api_key


def _call(settings: Settings, api_key: str, method: str, path: str, body: Any = None) -> Any:
    url = f"http://{settings.host}:{settings.gateway_port}{path}"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if method == "POST":
        headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - local http
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc


def collect_through_gateway(
    settings: Settings,
    payers: list[str],
    count: int,
    timeout_s: float,
    progress: Callable[[int], None],
) -> dict[str, Any]:
    """Create ``count`` payments over REST and wait until each has ended."""
    merchant_id, api_key = register(settings, payers)
    currency = settings.currency[0]
    ids = []
    for i in range(count):
        body = {"payer_account": payers[i % len(payers)], "amount": 1_000 + i, "currency": currency}
        ids.append(_call(settings, api_key, "POST", "/v1/payments", body)["id"])
    deadline = time.monotonic() + timeout_s
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < count and time.monotonic() < deadline:
        for payment_id in set(ids) - set(ended):
            payment = _call(settings, api_key, "GET", f"/v1/payments/{payment_id}")
            if payment["status"] in ENDED:
                ended[payment_id] = payment
                progress(1)
        time.sleep(0.5)
    return {
        "merchant_id": merchant_id,
        "created": count,
        "by_status": dict(Counter(p["status"] for p in ended.values())),
        "not_ended": count - len(ended),
        "key_file": str(settings.state_dir / "demo-merchant.json"),
    }

"""A merchant for the demo and the bench: registered with an API key and
mandates from some payers (as ``paystream merchants create`` and ``paystream
mandates grant`` do), and a small client of the gateway's REST API."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from schemas.api import Scope
from schemas.merchants import Merchant
from services.bootstrap import pg_connection
from services.settings import Settings
from services.store.keys import grant_mandate, issue_key, limit_keys
from services.store.merchants import create_merchant, new_merchant_id

SCOPES: tuple[Scope, ...] = ("payments:write", "payments:read")


@dataclass(frozen=True)
class MerchantClient:
    """The gateway at ``settings.gateway_port``, as one merchant."""

    settings: Settings
    merchant: Merchant
    api_key: str

    @property
    def merchant_id(self) -> str:
        return self.merchant.merchant_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"http://{self.settings.host}:{self.settings.gateway_port}{path}"
        headers = {**self.headers, "Content-Type": "application/json"}
        if method == "POST":
            headers["Idempotency-Key"] = f"harness-{uuid.uuid4()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - local http
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc

    def create(self, payer: str, amount: int) -> dict[str, Any]:
        body = {"payer_account": payer, "amount": amount, "currency": self.settings.currency[0]}
        answer: dict[str, Any] = self.call("POST", "/v1/payments", body)
        return answer

    def all_payments(self) -> list[dict[str, Any]]:
        """Every payment of the merchant, newest first (page by page)."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = self.call("GET", f"/v1/payments?limit=100{cursor}")
            found += page["data"]
            if not page["has_more"]:
                return found
            cursor = f"&starting_after={found[-1]['id']}"


def register_merchant(
    settings: Settings,
    payers: list[str],
    name: str,
    scopes: tuple[Scope, ...] = SCOPES,
    fee_bps: int = 100,
    limit: tuple[float, int] | None = None,
) -> MerchantClient:
    """A new merchant with an API key (``limit``: its rate per second and
    burst; None: the gateway's defaults) and mandates from ``payers``."""
    merchant = Merchant(
        merchant_id=new_merchant_id(),
        name=name,
        payout_address="0x" + secrets.token_hex(20),
        fee_bps=fee_bps,
    )
    with pg_connection(settings) as conn, conn.transaction():
        create_merchant(conn, merchant, "harness")
        api_key = issue_key(conn, merchant.merchant_id, scopes, "harness")
        if limit is not None:
            limit_keys(conn, merchant.merchant_id, *limit, "harness")
        for payer in payers:
            grant_mandate(conn, payer, merchant.merchant_id, None, "harness")
    return MerchantClient(settings, merchant, api_key)

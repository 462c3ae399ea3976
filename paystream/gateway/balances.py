"""``GET /v1/balances/{account}``: the balance of an account that granted the
merchant a mandate. Live, from the engine: each running worker is asked
(``?owned=1``) and the one whose partitions hold the account answers. With
``as_of``, from the ledger: the account's entries booked by then."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, Query, Request

from paystream.gateway.auth import Caller, gateway_of, require
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError, responses
from schemas.api import Balance
from services.metrics.targets import worker_addresses
from services.store.keys import mandate_limit

router = APIRouter(prefix="/v1/balances", tags=["balances"])
ASK_TIMEOUT_S = 2.0


async def _ask(session: aiohttp.ClientSession, address: str, account: str) -> Any:
    """The worker's answer for ``account`` if it holds it (None: not it, or no answer)."""
    url = f"http://{address}/balances/{account}/"
    try:
        async with session.get(url, params={"owned": "1"}) as answer:
            return await answer.json() if answer.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def live_balance(gateway: Gateway, account: str) -> Balance:
    timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for address in worker_addresses(gateway.settings):
            found = await _ask(session, address, account)
            if found is not None:
                return Balance.model_validate(found)
    raise ApiError(
        "balance_unavailable",
        "no running worker holds this account now (stopped, or rebalancing): try again",
    )


@router.get(
    "/{account}",
    response_model=Balance,
    response_model_exclude_none=True,
    responses=responses("resource_missing", "balance_unavailable"),
)
async def get_balance(
    account: str,
    request: Request,
    caller: Annotated[Caller, Depends(require("payments:read"))],
    as_of: Annotated[datetime | None, Query(description="RFC 3339, with a time zone")] = None,
) -> Balance:
    """An account's balance (it must have granted you a mandate): live from the
    engine, or with ``as_of`` what the ledger had booked for it by then."""
    gateway = gateway_of(request)
    granted, _ = await mandate_limit(gateway.pool, account, caller.merchant.merchant_id)
    if not granted:
        raise ApiError("resource_missing", f"no account {account} granted you a mandate", "account")
    if as_of is None:
        return await live_balance(gateway, account)
    if as_of.tzinfo is None:
        raise ApiError("invalid_request", "as_of needs a time zone (RFC 3339)", "as_of")
    booked = await gateway.store.ledger_balance(account, as_of)
    return Balance(account=account, as_of=as_of, ledger_balance=booked)

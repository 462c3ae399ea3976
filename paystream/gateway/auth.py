"""Who is calling: ``Authorization: Bearer <API key>``. The key is found by
its key id through the Redis cache-aside (a minute; PostgreSQL when Redis is
down), compared by hash in constant time, and must not be revoked and must
carry the route's scope; then the request counts against the key's rate
limit (``admission.py``). Revoking a key clears its cache entry, so it stops
working at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paystream.gateway.admission import rate_limit
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError
from schemas.api import Scope
from schemas.merchants import Merchant
from services.store.keys import KeyHolder, key_id_of, load_holder, matches


@dataclass(frozen=True)
class Caller:
    merchant: Merchant
    key_id: str


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _holder(gateway: Gateway, key_id: str) -> KeyHolder | None:
    return await gateway.cache.get(
        "api_keys", key_id, KeyHolder, lambda: load_holder(gateway.pool, key_id)
    )


# In OpenAPI as the "bearer" security scheme; missing credentials are ours to refuse.
bearer = HTTPBearer(auto_error=False, description="Your API key (psk_...)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller, if its key is live and has ``scope``."""

    async def authenticate(request: Request, credentials: Credentials) -> Caller:
        if credentials is None or not credentials.credentials.strip():
            raise ApiError("authentication_required", "send Authorization: Bearer <API key>")
        api_key = credentials.credentials.strip()
        key_id = key_id_of(api_key)
        holder = await _holder(gateway_of(request), key_id) if key_id else None
        if holder is None or not matches(holder, api_key):
            raise ApiError("invalid_api_key", "the API key is not valid")
        if holder.revoked:
            raise ApiError("api_key_revoked", "the API key was revoked")
        if scope not in holder.scopes:
            raise ApiError("insufficient_scope", f"the API key lacks the scope {scope}")
        await rate_limit(request, gateway_of(request), holder)
        return Caller(merchant=holder.merchant, key_id=holder.key_id)

    return authenticate

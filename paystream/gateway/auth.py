"""Who is calling: ``Authorization: Bearer <API key>``. The key is found by
its key id through the Redis cache-aside (a minute; PostgreSQL when Redis is
down), compared by hash in constant time, and must not be revoked and must
carry the route's scope; such a request counts against the key's rate limit
(``admission.py``). When the key is cached, one Redis script finds it and
counts the request (``RateLimiter.check_key``). Revoking a key clears its
cache entry, so it stops working at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paystream.gateway.admission import default_limit, enforce, limit_of, rate_limit
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError
from schemas.api import Scope
from schemas.merchants import Merchant
from services.cache.aside import entry_name
from services.store.keys import KeyHolder, digest, key_id_of, load_holder, matches


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


async def _checked(
    request: Request, gateway: Gateway, api_key: str, key_id: str, scope: Scope
) -> KeyHolder | None:
    """The key's holder, and its request counted: in one Redis round trip when
    the holder is cached; from PostgreSQL (and cached) when it is not; from
    PostgreSQL and admitted unlimited when Redis does not answer."""
    entry = entry_name("api_keys", key_id, gateway.cache.prefix)
    default = default_limit(gateway)
    checked = await gateway.limiter.check_key(entry, key_id, digest(api_key).hex(), scope, default)
    if checked is None:  # Redis did not answer
        holder = await load_holder(gateway.pool, key_id)
        if holder is not None and may_call(holder, api_key, scope):
            enforce(request, gateway, default, None)
        return holder
    if checked.holder is None:  # not cached
        holder = await _holder(gateway, key_id)
        if holder is not None and may_call(holder, api_key, scope):
            await rate_limit(request, gateway, holder)
        return holder
    holder = KeyHolder.model_validate_json(checked.holder)
    if checked.verdict is not None:
        enforce(request, gateway, limit_of(gateway, holder), checked.verdict)
    elif may_call(holder, api_key, scope):  # never expected: the script did not count it
        await rate_limit(request, gateway, holder)
    return holder


def may_call(holder: KeyHolder, api_key: str, scope: Scope) -> bool:
    return matches(holder, api_key) and not holder.revoked and scope in holder.scopes


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
        gateway = gateway_of(request)
        holder = await _checked(request, gateway, api_key, key_id, scope) if key_id else None
        if holder is None or not matches(holder, api_key):
            raise ApiError("invalid_api_key", "the API key is not valid")
        if holder.revoked:
            raise ApiError("api_key_revoked", "the API key was revoked")
        if scope not in holder.scopes:
            raise ApiError("insufficient_scope", f"the API key lacks the scope {scope}")
        return Caller(merchant=holder.merchant, key_id=holder.key_id)

    return authenticate

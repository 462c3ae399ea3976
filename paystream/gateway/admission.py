"""Whether the gateway takes a payment now: per API key, a GCRA rate limit in
Redis (``services/cache/ratelimit.py``); for the engine, the worker's lag on
``payments.requested``. While the worker reads it more than
``admission_lag_max_s`` behind, ``POST /v1/payments`` answers 429 before
anything is published, with ``Retry-After`` from the measured backlog and the
rate the worker drains it. Each decision is counted
(``paystream_gateway_admission_total{decision}``)."""

from __future__ import annotations

import math

from fastapi import Request

from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError
from schemas.topics import PAYMENTS_REQUESTED
from services.cache.ratelimit import Limit, Verdict
from services.store.keys import KeyHolder

RETRY_MAX_S = 300


def default_limit(gateway: Gateway) -> Limit:
    settings = gateway.settings
    return Limit(rate_per_s=settings.gateway_rate_per_s, burst=settings.gateway_burst)


def limit_of(gateway: Gateway, holder: KeyHolder) -> Limit:
    default = default_limit(gateway)
    return Limit(
        rate_per_s=holder.rate_per_s or default.rate_per_s, burst=holder.burst or default.burst
    )


def headers_of(verdict: Verdict, limit: Limit) -> dict[str, str]:
    """The ``RateLimit-*`` headers (IETF draft) of a decision."""
    window = max(1, math.ceil(limit.burst / limit.rate_per_s))
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(math.ceil(verdict.reset_s)),
        "RateLimit-Policy": f"{limit.burst};w={window}",
    }


async def rate_limit(request: Request, gateway: Gateway, holder: KeyHolder) -> None:
    """Count the request against its key's limit: 429 past it."""
    limit = limit_of(gateway, holder)
    enforce(request, gateway, limit, await gateway.limiter.check(holder.key_id, limit))


def enforce(request: Request, gateway: Gateway, limit: Limit, verdict: Verdict | None) -> None:
    """A counted request's verdict: its ``RateLimit-*`` headers, or 429 past the
    limit. When Redis did not answer (no verdict), the request is admitted (and
    counted as ``unlimited``)."""
    if verdict is None:
        gateway.metrics.admission.labels("unlimited").inc()
        return
    headers = headers_of(verdict, limit)
    request.state.ratelimit_headers = headers
    if not verdict.allowed:
        gateway.metrics.admission.labels("rate_limited").inc()
        raise ApiError(
            "rate_limited",
            f"over this key's limit ({limit.burst} at once, {limit.rate_per_s:g}/s)",
            headers={**headers, "Retry-After": verdict.retry_after_header},
        )


def engine_admits(gateway: Gateway) -> bool:
    """Whether the worker reads requests within ``admission_lag_max_s`` (not counted)."""
    lag_s = gateway.eta.lag_s.get(gateway.settings.topic(PAYMENTS_REQUESTED), 0.0)
    return lag_s <= gateway.settings.admission_lag_max_s


def admit_payment(gateway: Gateway) -> None:
    """429 ``engine_busy`` while the worker reads requests too far behind."""
    if engine_admits(gateway):
        gateway.metrics.admission.labels("admitted").inc()
        return
    gateway.metrics.admission.labels("engine_busy").inc()
    eta = gateway.eta
    topic = gateway.settings.topic(PAYMENTS_REQUESTED)
    lag_s = eta.lag_s.get(topic, 0.0)
    limit_s = gateway.settings.admission_lag_max_s
    drain = eta.drain_per_s.get(topic, 0.0)
    backlog = eta.lag_records.get(topic, 0)
    # Until the backlog is read down to limit_s worth of records at the measured rate.
    wait_s = backlog / drain - limit_s if drain > 0 else lag_s - limit_s
    retry = min(RETRY_MAX_S, max(1, math.ceil(wait_s)))
    raise ApiError(
        "engine_busy",
        f"the engine is {lag_s:.0f} s behind on payment requests (limit {limit_s:g} s); "
        f"nothing was published: retry after {retry} s",
        headers={"Retry-After": str(retry)},
    )

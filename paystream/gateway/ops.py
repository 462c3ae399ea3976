"""The ops page: ``/ops`` (a page and its assets, all served from
``paystream/gateway/static``: nothing from a CDN) and ``/ops/data``, what the
page shows, for the operators' bearer token (``PAYSTREAM_OPS_TOKEN``).

``/ops/data`` gathers, each from its source, and says which source did not
answer instead of failing: the panels of ``services/metrics/panels.py`` from
Prometheus (lag per group and throughput over the last 15 minutes, the rest
now), the success rate's Wilson interval, the firing alerts from
Alertmanager, the last dead letters from ``payments.dlq`` (redacted), the
payments held for review from PostgreSQL, and the chain's head against the
listener and the confirmations the engine waits for.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from paystream.gateway.auth import Credentials, gateway_of
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError
from services.errors import PaystreamError
from services.metrics.monitor import Monitor
from services.metrics.panels import PANELS, Panel
from services.metrics.stats import wilson
from streams.ops.dead_letters import last_dead_letters

STATIC = Path(__file__).with_name("static")
HISTORY_S = 15 * 60
STEP_S = 5.0

router = APIRouter(include_in_schema=False)
assets = StaticFiles(directory=STATIC)


async def operator(request: Request, credentials: Credentials) -> None:
    """The caller holds the operators' token (compared in constant time)."""
    if credentials is None or not credentials.credentials.strip():
        raise ApiError("authentication_required", "send Authorization: Bearer <ops token>")
    expected = gateway_of(request).settings.ops_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.strip().encode(), expected):
        raise ApiError("invalid_api_key", "the ops token is not valid")


@router.get("/ops")
async def page() -> FileResponse:
    return FileResponse(STATIC / "ops.html", headers={"Cache-Control": "no-store"})


@router.get("/ops/data", dependencies=[Depends(operator)])
async def data(request: Request) -> dict[str, Any]:
    gateway = gateway_of(request)
    sources: dict[str, str] = {}
    results = await asyncio.gather(
        _panels(gateway.monitor, sources),
        _alerts(gateway.monitor, sources),
        _dead_letters(gateway, sources),
        _reviews(gateway, sources),
    )
    panels, alerts, dead_letters, reviews = results
    return {
        "at": datetime.now(UTC).isoformat(),
        "panels": panels,
        "success": success_of(panels),
        "chain": _chain(gateway, panels),
        "alerts": alerts,
        "dead_letters": dead_letters,
        "reviews": reviews,
        "sources": sources,
    }


async def _guard(sources: dict[str, str], name: str, work: Any) -> Any:
    """``work``'s result, or None with the reason in ``sources``."""
    try:
        result = await work
    except (PaystreamError, OSError) as exc:
        sources[name] = str(exc)[:300]
        return None
    sources.setdefault(name, "ok")
    return result


async def _panel(monitor: Monitor, panel: Panel, now: float) -> dict[str, Any]:
    if panel.over_time:
        series = await monitor.query_range(panel.expr, now - HISTORY_S, now, STEP_S)
        return {
            "title": panel.title,
            "unit": panel.unit,
            "series": [{"labels": s.labels, "points": s.points} for s in series],
        }
    samples = await monitor.query(panel.expr)
    return {
        "title": panel.title,
        "unit": panel.unit,
        "values": [{"labels": s.labels, "value": s.value} for s in samples],
    }


async def _panels(monitor: Monitor, sources: dict[str, str]) -> dict[str, Any]:
    """Every panel, queried at once (a Prometheus that hangs costs one timeout)."""
    now = time.time()
    results = await asyncio.gather(
        *(_guard(sources, "prometheus", _panel(monitor, panel, now)) for panel in PANELS)
    )
    return {p.key: r for p, r in zip(PANELS, results, strict=True) if r is not None}


def _value(panels: dict[str, Any], key: str) -> float | None:
    values = panels.get(key, {}).get("values") or []
    value = values[0]["value"] if values else None
    return None if value is None else float(value)


def success_of(panels: dict[str, Any]) -> dict[str, Any]:
    """Settled over settled + failed in the last 5 minutes, with its Wilson 95 %
    interval (from the counts Prometheus has; rejections do not count)."""
    decided = round(_value(panels, "settlements_5m") or 0)
    ok = min(decided, round(_value(panels, "settled_ok_5m") or 0))
    low, high = wilson(ok, decided)
    rate = ok / decided if decided else None
    return {"window": "5m", "ok": ok, "decided": decided, "rate": rate, "ci95": [low, high]}


def _chain(gateway: Gateway, panels: dict[str, Any]) -> dict[str, Any]:
    head, listener = _value(panels, "chain_head"), _value(panels, "chain_listener")
    s = gateway.settings
    return {
        "head": head,
        "listener": listener,
        "behind": None if head is None or listener is None else head - listener,
        "head_age_s": _value(panels, "chain_head_age"),
        "confirmations_min": s.confirmations_min,
        "finality_depth": s.finality_depth,
        "halted": bool(_value(panels, "settlement_halted")),
    }


async def _alerts(monitor: Monitor, sources: dict[str, str]) -> list[dict[str, Any]] | None:
    alerts: list[dict[str, Any]] | None = await _guard(
        sources, "alertmanager", monitor.firing_alerts()
    )
    return alerts


async def _dead_letters(gateway: Gateway, sources: dict[str, str]) -> list[dict[str, Any]] | None:
    work = asyncio.to_thread(last_dead_letters, gateway.settings)
    letters = await _guard(sources, "kafka", work)
    return None if letters is None else [asdict(letter) for letter in letters]


async def _reviews(gateway: Gateway, sources: dict[str, str]) -> dict[str, Any] | None:
    found = await _guard(sources, "postgres", gateway.store.pending_reviews())
    if found is None:
        return None
    count, oldest, soonest = found
    now = datetime.now(UTC)
    return {
        "pending": count,
        "oldest_s": (now - oldest).total_seconds() if oldest else None,
        "next_expiry": soonest.isoformat() if soonest else None,
    }

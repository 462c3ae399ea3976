"""Prometheus's and Alertmanager's HTTP APIs, read by the ops page: instant
and range queries, and the alerts firing. Every call has a timeout; an
answer that is not there is ``MonitorUnavailable``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.errors import InfrastructureError

TIMEOUT_S = 5.0


class MonitorUnavailable(InfrastructureError):
    """Prometheus or Alertmanager did not answer, or answered an error."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float | None  # None: NaN (e.g. a quantile of no traffic)


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float | None]]  # (epoch seconds, value)


def _number(raw: str) -> float | None:
    value = float(raw)
    return None if math.isnan(value) or math.isinf(value) else value


class Monitor:
    def __init__(self, prometheus_url: str, alertmanager_url: str) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.alertmanager_url = alertmanager_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, url: str, params: dict[str, str]) -> Any:
        try:
            async with self._client().get(url, params=params) as reply:
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise MonitorUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        if reply.status != 200:
            raise MonitorUnavailable(f"{url}: HTTP {reply.status}: {str(body)[:200]}")
        return body

    async def _prometheus(self, path: str, params: dict[str, str]) -> Any:
        body = await self._get(f"{self.prometheus_url}{path}", params)
        if body.get("status") != "success":
            raise MonitorUnavailable(f"Prometheus: {body.get('error', body)}")
        return body["data"]

    async def query(self, expr: str) -> list[Sample]:
        data = await self._prometheus("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [Sample({}, _number(data["result"][1]))]
        return [Sample(r["metric"], _number(r["value"][1])) for r in data["result"]]

    async def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}"}
        data = await self._prometheus("/api/v1/query_range", params)
        return [
            Series(r["metric"], [(float(t), _number(v)) for t, v in r["values"]])
            for r in data["result"]
        ]

    async def firing_alerts(self) -> list[dict[str, Any]]:
        """The alerts firing now (active, neither silenced nor inhibited)."""
        url = f"{self.alertmanager_url}/api/v2/alerts"
        params = {"active": "true", "silenced": "false", "inhibited": "false"}
        alerts = await self._get(url, params)
        return [
            {
                "name": a["labels"].get("alertname", ""),
                "severity": a["labels"].get("severity", ""),
                "labels": {k: v for k, v in a["labels"].items() if k != "alertname"},
                "summary": a.get("annotations", {}).get("summary", ""),
                "since": a.get("startsAt"),
            }
            for a in alerts
        ]

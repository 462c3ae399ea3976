"""The worker's web views: a payer's balance, the rolling windows and the
Prometheus metrics.

A balance is read from this worker's local ``balances`` table: a payer it has
no entry for reads as an empty balance. With ``?owned=1`` a worker answers 404
for a payer whose partition is not active on it (another worker's, or none
during a rebalance): the gateway asks each worker that way and takes the
owner's answer.
"""

from __future__ import annotations

from collections.abc import Mapping

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.partitioning import partition_for
from schemas.topics import PAYMENTS_REQUESTED
from streams.runtime import Runtime
from streams.scheduler import active_partitions
from streams.state import NO_BALANCE, Balance


def register(app: faust.App, balances: Mapping[str, Balance], runtime: Runtime) -> None:
    owned = active_partitions(app, runtime.settings.topic(PAYMENTS_REQUESTED))
    partitions = runtime.settings.kafka_partitions

    @app.page("/balances/{account}/")
    class BalanceView(View):
        async def get(self, request: Request, account: str) -> Response:
            if request.query.get("owned") and partition_for(account, partitions) not in owned():
                return self.json({"account": account, "owned": False}, status=404)
            balance = balances.get(account, NO_BALANCE)
            body = {**balance.summary(), "owed": balance.owed}  # owed: frozen by a reorg
            return self.json({"account": account, **body})

    @app.page("/windows/")
    class WindowsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(runtime.windows.snapshot())

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                generate_latest(runtime.metrics.registry),
                content_type=CONTENT_TYPE_LATEST.split(";")[0],
            )

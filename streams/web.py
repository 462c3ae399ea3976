"""The worker's web views: a payer's balance, the rolling windows and the
Prometheus metrics.

A balance is read from this worker's local ``balances`` table: a payer it has
no entry for reads as an empty balance.
"""

from __future__ import annotations

from collections.abc import Mapping

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.runtime import Runtime
from streams.state import NO_BALANCE, Balance


def register(app: faust.App, balances: Mapping[str, Balance], runtime: Runtime) -> None:
    @app.page("/balances/{account}/")
    class BalanceView(View):
        async def get(self, request: Request, account: str) -> Response:
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

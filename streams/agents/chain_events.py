"""The reconciler agent (consumes ``chain.events``): confirmed settlements
capture their holds, deposits are credited (a deposit the balance forgot is
read from the ledger first: ``streams/deposits.py``), disagreements become
alerts (``streams/stages/reconcile.py``)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.topics import CHAIN_EVENTS
from streams.agents.shell import run
from streams.deposits import DepositRecall
from streams.outcomes import Outcome
from streams.runtime import Runtime
from streams.stages.reconcile import handle_chain_events
from streams.stages.settled import ReconcileDeps


def handle(raw: bytes, key: str, _partition: int, _offset: int, deps: ReconcileDeps) -> Outcome:
    return handle_chain_events(raw, key, deps)


def register(app: faust.App, runtime: Runtime, deps: ReconcileDeps, recall: DepositRecall) -> None:
    @app.agent(runtime.topics[CHAIN_EVENTS], name="reconciler")
    async def reconciler_agent(stream: Any) -> None:
        await run(stream, handle, deps, runtime, "reconciler", recall.prepare)

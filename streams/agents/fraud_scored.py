"""The settlement agent (consumes ``fraud.scored``): each approved payment joins
its partition's open batch (``streams/stages/settlement/batching.py``); the
scheduler (``streams/scheduler.py``) sends the batches.

The record's partition picks the batch, and the partition and offset of a
batch's first record label it, so this is the one handler that needs them (the
on-chain sequence number is claimed when the batch is sent)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.topics import FRAUD_SCORED
from streams.agents.shell import run
from streams.outcomes import Outcome
from streams.runtime import Runtime
from streams.stages.settlement.batching import SettlementDeps, handle_scored


def handle(raw: bytes, _key: str, partition: int, offset: int, deps: SettlementDeps) -> Outcome:
    return handle_scored(raw, partition, offset, deps)


def register(app: faust.App, runtime: Runtime, deps: SettlementDeps) -> None:
    @app.agent(runtime.topics[FRAUD_SCORED], name="settlement")
    async def settlement_agent(stream: Any) -> None:
        await run(stream, handle, deps, runtime, "settlement")

"""The submitted agent (consumes ``chain.submitted``): a sent payment becomes
SUBMITTED; one the chain refused fails and its hold is released
(``streams/stages/submitted.py``)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.topics import CHAIN_SUBMITTED
from streams.agents.shell import run
from streams.outcomes import Outcome
from streams.runtime import Runtime
from streams.stages.submitted import SubmittedDeps, handle_submitted


def handle(raw: bytes, _key: str, _partition: int, _offset: int, deps: SubmittedDeps) -> Outcome:
    return handle_submitted(raw, deps)


def register(app: faust.App, runtime: Runtime, deps: SubmittedDeps) -> None:
    @app.agent(runtime.topics[CHAIN_SUBMITTED], name="submitted")
    async def submitted_agent(stream: Any) -> None:
        await run(stream, handle, deps, runtime, "submitted")

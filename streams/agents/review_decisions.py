"""The review agent (consumes ``review.decisions``): an operator's approval or
denial, or the expiry, ends a hold for review (``streams/stages/review.py``)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.topics import REVIEW_DECISIONS
from streams.agents.shell import run
from streams.outcomes import Outcome
from streams.runtime import Runtime
from streams.stages.review import ReviewDeps, handle_decision


def handle(raw: bytes, _key: str, partition: int, _offset: int, deps: ReviewDeps) -> Outcome:
    return handle_decision(raw, partition, deps)


def register(app: faust.App, runtime: Runtime, deps: ReviewDeps) -> None:
    @app.agent(runtime.topics[REVIEW_DECISIONS], name="review")
    async def review_agent(stream: Any) -> None:
        await run(stream, handle, deps, runtime, "review")

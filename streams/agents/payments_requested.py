"""The fraud agent (consumes ``payments.requested``): each request is scored,
and an approved one holds its amount (``streams/stages/fraud.py``). The
record's partition goes with it: a request read off its payer's partition is
re-routed there before any state is written. A request naming a merchant the
worker does not know yet waits for the merchant directory to reload. After
each request a few terminal payments past their retention leave the tables
(``streams/retention.py``)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.topics import PAYMENTS_REQUESTED
from streams.agents.shell import run
from streams.merchants import MerchantDirectory
from streams.outcomes import Outcome
from streams.runtime import Runtime, log
from streams.stages.fraud import FraudDeps, handle_request


def handle(raw: bytes, key: str, partition: int, _offset: int, deps: FraudDeps) -> Outcome:
    outcome = handle_request(raw, key, deps, partition)
    if deps.retention is not None:
        try:
            deps.retention.tidy(partition)  # in this record's partition (its changelog's)
        except Exception:  # noqa: BLE001 - housekeeping must not cost the record its outcome
            log.exception("retention: unexpected error; it runs again with the next request")
    return outcome


def register(
    app: faust.App, runtime: Runtime, deps: FraudDeps, merchants: MerchantDirectory
) -> None:
    @app.agent(runtime.topics[PAYMENTS_REQUESTED], name="fraud")
    async def fraud_agent(stream: Any) -> None:
        await run(stream, handle, deps, runtime, "fraud", merchants.prepare)

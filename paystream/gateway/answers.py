"""The first answers of requests with an ``Idempotency-Key``, stored in
batches (``batching.Batcher``) after they are sent.

A request is answered once Kafka has its payment; storing its answer for
replays then needs no round trip of its own.

Until its answer is stored, a key stays claimed by its request: a retry waits
for the answer (``payments._answered``). If the answer is never stored (the
store down, or the gateway stopped first), a retry takes the claim over once
it is stale and publishes the same payment again, which the engine
deduplicates by its id: the retry gets a new 202 for the same payment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from paystream.gateway.batching import Batcher
from services.errors import StoreUnavailable
from services.store.gateway import Answer, GatewayStore

log = logging.getLogger("paystream.gateway")


class Answers:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.batches: Batcher[Answer, None] = Batcher(self._write, "gateway-answers")

    def put(self, answer: Answer) -> None:
        """Store ``answer`` with the next batch."""
        self.batches.submit(answer).add_done_callback(_log_failure)

    async def _write(self, answers: Sequence[Answer]) -> list[None]:
        try:
            await self.store.answered(answers)
        except StoreUnavailable as exc:  # their keys stay claimed: see the module
            n = len(answers)
            log.warning("%d answers not stored (%s); their retries publish again", n, exc)
        return [None] * len(answers)

    async def close(self) -> None:
        await self.batches.close()


def _log_failure(stored: asyncio.Future[None]) -> None:
    if not stored.cancelled() and stored.exception() is not None:
        log.error("an answer was not stored", exc_info=stored.exception())

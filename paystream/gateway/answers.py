"""The first answers of requests with an ``Idempotency-Key``, stored in
batches after they are sent.

A request is answered once Kafka has its payment; storing its answer for
replays then needs no other round trip of its own. While one statement stores
a batch, the answers given meanwhile wait for the next one, so under load one
statement stores many and when quiet each goes at once.

Until its answer is stored, a key stays claimed by its request: a retry waits
for the answer (``payments._answered``). If the answer is never stored (the
store down, or the gateway stopped first), a retry takes the claim over once
it is stale and publishes the same payment again, which the engine
deduplicates by its id: the retry gets a new 202 for the same payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.errors import StoreUnavailable
from services.store.gateway import Answer, GatewayStore

log = logging.getLogger("paystream.gateway")

CLOSE_TIMEOUT_S = 10.0


class Answers:
    def __init__(self, store: GatewayStore) -> None:
        self.store = store
        self.pending: list[Answer] = []
        self.writing: asyncio.Task[None] | None = None

    def put(self, answer: Answer) -> None:
        """Store ``answer`` with the next batch."""
        self.pending.append(answer)
        if self.writing is None:
            self.writing = asyncio.create_task(self._write(), name="gateway-answers")

    async def _write(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await self.store.answered(batch)
                except StoreUnavailable as exc:  # their keys stay claimed: see the module
                    n = len(batch)
                    log.warning("%d answers not stored (%s); their retries publish again", n, exc)
        finally:
            self.writing = None

    async def close(self) -> None:
        """Once the answers given so far are stored (or the timeout passed)."""
        writing = self.writing
        if writing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writing), CLOSE_TIMEOUT_S)

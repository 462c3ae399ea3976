"""The review expiry sweep: a payment held for review that nobody decided on
by its ``expires_at`` gets an EXPIRE decision on ``review.decisions``, which the
review agent applies like an operator's (``streams/stages/review.py``): the
hold is released and ``REVIEW_EXPIRED`` published. Only the partitions this
worker actively owns are swept; the decision goes to the payment's partition,
and its event id is the same every time, so a sweep repeated before the agent
got to it changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import faust

from schemas.partitioning import partition_for
from schemas.review import ReviewDecision, ReviewHeld, expiry_event_id
from schemas.topics import PAYMENTS_REVIEW, REVIEW_DECISIONS
from services.settings import Settings
from streams.outcomes import Emit
from streams.scheduler import Owned
from streams.state import PaymentState, Status
from streams.tables import ModelTable

log = logging.getLogger("paystream.streams")

SWEEP_INTERVAL_S = 30.0
RESEND_AFTER_S = 300.0  # an expiry not applied by then is published again


class ReviewExpiry:
    def __init__(
        self,
        settings: Settings,
        payments: ModelTable[PaymentState],
        owned: Owned,
        send: Callable[[Emit], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.payments = payments
        self.owned = owned  # the partitions this worker actively owns
        self.send = send
        self.clock = clock
        self.sent: dict[str, float] = {}  # payment key -> monotonic time of its expiry

    def due(self) -> list[ReviewDecision]:
        """The expiry decisions due now on the owned partitions."""
        owned = self.owned()
        if not owned or self.payments.stale:
            return []  # nothing owned, or the index is rebuilt (after a rebalance): next sweep
        now, mono, n = self.clock(), time.monotonic(), self.settings.kafka_partitions
        due = []
        for state in list(self.payments.where("status", Status.REVIEW.value)):
            key = f"{state.payer_account}:{state.payment_id}"
            raw = state.outputs.get(PAYMENTS_REVIEW)
            if raw is None or partition_for(state.payer_account, n) not in owned:
                continue
            if mono - self.sent.get(key, -RESEND_AFTER_S) < RESEND_AFTER_S:
                continue
            if ReviewHeld.model_validate_json(raw).expires_at > now:
                continue
            self.sent[key] = mono
            due.append(
                ReviewDecision(
                    event_id=expiry_event_id(state.payment_id),
                    payment_id=state.payment_id,
                    payer_account=state.payer_account,
                    verdict="EXPIRE",
                    decided_by="expiry",
                    note=f"no decision within {self.settings.review_expiry_s} s",
                    decided_at=now,
                )
            )
        return due

    async def sweep(self) -> int:
        due = self.due()
        for decision in due:
            home = partition_for(decision.payer_account, self.settings.kafka_partitions)
            await self.send(Emit(REVIEW_DECISIONS, decision.payer_account, decision, home))
        if due:
            log.info("review expiry: %d payments held past their expiry", len(due))
        self.sent = {k: t for k, t in self.sent.items() if time.monotonic() - t < RESEND_AFTER_S}
        return len(due)


def register(app: faust.App, expiry: ReviewExpiry) -> None:
    @app.timer(interval=SWEEP_INTERVAL_S)
    async def expire_reviews() -> None:
        try:
            await expiry.sweep()
        except Exception:  # a timer must not raise; the next sweep runs
            log.exception("review expiry: unexpected error; it runs again next time")

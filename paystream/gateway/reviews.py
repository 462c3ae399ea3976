"""``/v1/reviews``: a merchant's payments held for review, and its decisions
on them. A decision takes the path of ``paystream review approve|deny``: it
is written to the audit log (the actor names the merchant and its key), then
published on ``review.decisions`` keyed by the payer, where the worker's
review agent ends the hold. Only the first decision on a payment counts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from paystream.gateway.auth import Caller, gateway_of, require
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError, responses
from paystream.gateway.payments import views
from paystream.gateway.publisher import NotPublished
from schemas.api import PaymentList, ReviewAnswer, ReviewDecisionCreate
from schemas.review import ReviewDecision
from schemas.topics import REVIEW_DECISIONS
from services.bootstrap import pg_connection
from services.store import audit
from services.store.gateway import PaymentRow

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])
VERDICTS = {"approve": "APPROVE", "deny": "DENY"}


@router.get("", response_model=PaymentList, responses=responses("invalid_cursor"))
async def list_reviews(
    request: Request,
    caller: Annotated[Caller, Depends(require("payments:read"))],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: uuid.UUID | None = None,
) -> PaymentList:
    """Your payments held for review (their payers' funds reserved), newest
    first; each says when it is denied if nobody decides."""
    gateway = gateway_of(request)
    merchant_id = caller.merchant.merchant_id
    if starting_after and await gateway.store.payment(merchant_id, starting_after) is None:
        raise ApiError("invalid_cursor", f"no payment {starting_after}", "starting_after")
    rows = await gateway.store.payments(merchant_id, limit + 1, starting_after, ["review"])
    return PaymentList(data=await views(gateway, rows[:limit]), has_more=len(rows) > limit)


def _audit(gateway: Gateway, row: PaymentRow, decision: ReviewDecision) -> None:
    detail = {
        "payer_account": row.payer_account,
        "verdict": decision.verdict,
        "note": decision.note,
    }
    with pg_connection(gateway.settings) as conn:
        action = f"review.{decision.verdict.lower()}"
        audit.append(conn, decision.decided_by, action, str(row.payment_id), detail)


@router.post(
    "/{payment_id}",
    status_code=202,
    response_model=ReviewAnswer,
    responses=responses("resource_missing", "not_in_review", "not_published"),
)
async def decide(
    payment_id: uuid.UUID,
    body: ReviewDecisionCreate,
    request: Request,
    caller: Annotated[Caller, Depends(require("reviews:write"))],
) -> ReviewAnswer:
    """Approve (it goes on to settlement) or deny (it fails ``review_denied``
    and its funds are released) one of your payments held for review. The
    answer is 202: the worker applies it; follow the payment to see it end."""
    gateway = gateway_of(request)
    row = await gateway.store.payment(caller.merchant.merchant_id, payment_id)
    if row is None:
        raise ApiError("resource_missing", f"no payment {payment_id}", "payment_id")
    (payment,) = await views(gateway, [row])
    if payment.status != "review":
        raise ApiError("not_in_review", f"payment {payment_id} is {payment.status}, not in review")
    decision = ReviewDecision(
        payment_id=payment_id,
        payer_account=row.payer_account,
        verdict=VERDICTS[body.decision],
        decided_by=f"merchant:{caller.merchant.merchant_id}:{caller.key_id}"[:64],
        note=body.note,
        decided_at=datetime.now(UTC),
    )
    await asyncio.to_thread(_audit, gateway, row, decision)
    try:
        await gateway.publisher.publish(
            REVIEW_DECISIONS, row.payer_account, decision.model_dump_json().encode()
        )
    except NotPublished as exc:
        raise ApiError(
            "not_published", f"the decision was not confirmed by Kafka ({exc}): send it again"
        ) from exc
    return ReviewAnswer(payment=payment, decision=body.decision, note=body.note)

"""``/v1/payments``: create a payment (published to ``payments.requested``
once the payer's mandate and the payee are checked), read one, list them.

A merchant sees only its own payments: another's id answers 404. With an
``Idempotency-Key`` the payment id is derived from the merchant and the key,
so every attempt of one request is the same payment for the engine too."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from paystream.gateway.admission import admit_payment, engine_admits
from paystream.gateway.auth import Caller, gateway_of, require
from paystream.gateway.context import Gateway
from paystream.gateway.errors import ApiError, responses
from paystream.gateway.publisher import NotPublished
from schemas.api import (
    Failure,
    Payment,
    PaymentCreate,
    PaymentList,
    Settlement,
    Stage,
    Status,
    api_code,
)
from schemas.codes import FailureCode
from schemas.payments import PaymentRequested
from schemas.topics import PAYMENTS_REQUESTED
from services.errors import StoreUnavailable
from services.store.gateway import Answer, Claim, KeyedPayment, PaymentRow
from services.store.keys import mandate_limit

router = APIRouter(prefix="/v1/payments", tags=["payments"])
_KEY_NAMESPACE = uuid.UUID("0b6a3f4e-2a8c-4d1b-9e57-3c1f2d4a5b6c")
REPLAY_WAIT_S = 40.0  # how long a request waits for the answer of the first one with its key
STAGE_ORDER = (
    "requested",
    "review",
    "scored",
    "submitted",
    "settled",
    "reorged",
    "finalized",
    "failed",
    "rejected",
)
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]


def _now() -> datetime:
    return datetime.now(UTC)


def view(gateway: Gateway, row: PaymentRow, status: str, stages: dict[str, Stage]) -> Payment:
    """The API's payment object of a gateway payment and its stages."""
    reached = {"requested": row.created_at} | {name: s.at for name, s in stages.items()}
    times = {name: reached[name] for name in STAGE_ORDER if name in reached}
    failure = settlement = None
    ended = stages.get(status)
    if status in ("failed", "rejected") and ended is not None and ended.code:
        code = FailureCode(ended.code)
        failure = Failure(code=api_code(code), engine_code=code, reason=ended.reason or "")
    if status in ("settled", "finalized") and ended is not None and ended.tx_hash:
        settlement = Settlement(tx_hash=ended.tx_hash, block_number=ended.block_number or 0)
    review = stages.get("review") if status == "review" else None
    known = {"requested": Stage(at=row.created_at)} | stages
    next_stage, eta = gateway.eta.next_of(status, known, _now())
    return Payment(
        id=row.payment_id,
        status=status,  # one of STATUSES (paystream_payment_status)
        amount=row.amount,
        currency=row.currency,
        payer_account=row.payer_account,
        payee_address=row.payee_address,
        metadata=row.metadata,
        created=row.created_at,
        stages=times,
        failure=failure,
        settlement=settlement,
        review_expires_at=review.expires_at if review else None,
        next_stage=next_stage,
        eta=eta,
    )


async def views(gateway: Gateway, rows: list[PaymentRow]) -> list[Payment]:
    progress = await gateway.store.progress([r.payment_id for r in rows])
    return [view(gateway, r, *progress[r.payment_id]) for r in rows]


def _payee_allowed(caller: Caller, body: PaymentCreate) -> bool:
    return body.payee_address is None or caller.merchant.pays_to(body.payee_address)


async def _check_mandate(gateway: Gateway, caller: Caller, body: PaymentCreate) -> None:
    merchant = caller.merchant
    if not _payee_allowed(caller, body):
        raise ApiError(
            api_code(FailureCode.NOT_MERCHANT_PAYEE),
            "payee_address must be your payout address (or left out)",
            "payee_address",
        )
    granted, limit = await mandate_limit(gateway.pool, body.payer_account, merchant.merchant_id)
    if not granted:
        raise ApiError(
            "no_mandate",
            f"{body.payer_account} has granted you no mandate to collect from it",
            "payer_account",
        )
    if limit is not None and body.amount > limit:
        raise ApiError("amount_over_mandate", f"the mandate allows at most {limit}", "amount")


def _replay(claim: Claim) -> Response:
    assert claim.status_code is not None and claim.response is not None
    headers = {"Idempotent-Replayed": "true"}
    return Response(claim.response, claim.status_code, headers, "application/json")


async def _answered(gateway: Gateway, merchant_id: str, key: str, claim: Claim) -> Response:
    """The first request's answer, once it has one (it is being answered now)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLAY_WAIT_S
    while claim.status_code is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
        claim = await gateway.store.claim(merchant_id, key, claim.request_hash, claim.payment_id)
        if claim.owned:  # the first attempt gave up: this one carries on
            raise _TakenOver(claim)
    if claim.status_code is None:
        raise ApiError("idempotency_key_in_use", "a request with this key is still being answered")
    return _replay(claim)


class _TakenOver(Exception):
    def __init__(self, claim: Claim) -> None:
        self.claim = claim


@functools.lru_cache(maxsize=4096)
def _checksummed(address: str) -> str:
    """The EIP-55 form of a merchant's payout address (a keccak hash: computed once)."""
    return to_checksum_address(address)


def _new(caller: Caller, body: PaymentCreate, payment_id: uuid.UUID) -> PaymentRow:
    """The row of a payment the gateway is creating."""
    merchant = caller.merchant
    return PaymentRow(
        payment_id=payment_id,
        merchant_id=merchant.merchant_id,
        payer_account=body.payer_account,
        payee_address=_checksummed(merchant.payout_address),
        amount=body.amount,
        currency=body.currency,
        metadata=body.metadata,
        created_at=_now(),
    )


async def _publish(gateway: Gateway, row: PaymentRow) -> None:
    """Publish the payment's request to the engine, made from its row."""
    request = PaymentRequested(
        payment_id=row.payment_id,
        payer_account=row.payer_account,
        payee_address=row.payee_address,
        amount=row.amount,
        currency=row.currency,
        merchant_id=row.merchant_id,
        metadata=row.metadata,
        requested_at=row.created_at,
    )
    try:
        await gateway.publisher.publish(
            PAYMENTS_REQUESTED, request.payer_account, request.model_dump_json().encode()
        )
    except NotPublished as exc:
        raise ApiError(
            "not_published",
            f"payment {request.payment_id} was not confirmed by Kafka ({exc}); retry with the "
            "same Idempotency-Key (the same payment), or look it up before sending it again",
        ) from exc


async def _published(gateway: Gateway, created: PaymentRow, new: bool) -> Payment:
    """Publish a recorded payment; ``new``: this request recorded it, so nothing
    can have happened to it yet (its stages are not read)."""
    await _publish(gateway, created)
    if new:
        return view(gateway, created, "requested", {})
    row = await gateway.store.payment(created.merchant_id, created.payment_id)
    assert row is not None  # recorded, and payments are never deleted
    (payment,) = await views(gateway, [row])
    return payment


async def _answer(gateway: Gateway, key: str, created: PaymentRow, new: bool) -> Response:
    """Publish the payment recorded under ``key`` and send its 202 (stored for
    replays in the next batch). If it is not published, the key is left to the
    next attempt."""
    merchant_id = created.merchant_id
    try:
        payment = await _published(gateway, created, new)
    except (ApiError, StoreUnavailable):
        await gateway.store.give_up(merchant_id, key)
        raise
    answer = payment.model_dump_json()
    gateway.answers.put(Answer(merchant_id, key, 202, answer))  # stored after it is sent
    return Response(answer, 202, media_type="application/json")


def _request_hash(body: PaymentCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "",
    status_code=202,
    response_model=Payment,
    responses=responses(
        "invalid_schema",
        "invalid_amount",
        "invalid_address",
        "unknown_currency",
        "not_merchant_payee",
        "no_mandate",
        "amount_over_mandate",
        "idempotency_key_reuse",
        "idempotency_key_in_use",
        "engine_busy",
        "not_published",
    ),
)
async def create_payment(
    body: PaymentCreate,
    request: Request,
    caller: Annotated[Caller, Depends(require("payments:write"))],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Collect a payment from a payer who granted you a mandate. Answered once
    Kafka has the request: the engine decides it asynchronously (follow it with
    ``GET /v1/payments/{id}``)."""
    gateway = gateway_of(request)
    merchant_id = caller.merchant.merchant_id
    if idempotency_key is None:
        admit_payment(gateway)
        await _check_mandate(gateway, caller, body)
        unkeyed = _new(caller, body, uuid.uuid4())
        return await _published(gateway, unkeyed, await gateway.store.record(unkeyed))
    payment_id = uuid.uuid5(_KEY_NAMESPACE, f"{merchant_id}:{idempotency_key}")
    request_hash = _request_hash(body)
    if engine_admits(gateway) and _payee_allowed(caller, body):
        # The usual case, a new key whose mandate covers it: claimed and recorded at
        # once, in one statement with the others arriving meanwhile.
        first = _new(caller, body, payment_id)
        claimed, recorded = await gateway.claims.submit(
            KeyedPayment(idempotency_key, request_hash, first)
        )
        if claimed:
            gateway.metrics.admission.labels("admitted").inc()
            return await _answer(gateway, idempotency_key, first, recorded)
    claim = await gateway.store.claim(merchant_id, idempotency_key, request_hash, payment_id)
    if claim.request_hash != request_hash:
        raise ApiError(
            "idempotency_key_reuse",
            "this Idempotency-Key was used with a different request",
            "Idempotency-Key",
        )
    if not claim.owned:
        if claim.status_code is not None:
            return _replay(claim)
        try:
            return await _answered(gateway, merchant_id, idempotency_key, claim)
        except _TakenOver as taken:
            claim = taken.claim
    try:
        admit_payment(gateway)
        await _check_mandate(gateway, caller, body)
    except ApiError:
        if claim.fresh:  # nothing was published under this key: free it
            await gateway.store.release(merchant_id, idempotency_key)
        else:  # an earlier attempt may have published: the key stays this request's
            await gateway.store.give_up(merchant_id, idempotency_key)
        raise
    again = _new(caller, body, claim.payment_id)
    try:
        recorded = await gateway.store.record(again)
    except StoreUnavailable:
        await gateway.store.give_up(merchant_id, idempotency_key)
        raise
    return await _answer(gateway, idempotency_key, again, recorded)


@router.get(
    "/{payment_id}",
    response_model=Payment,
    responses=responses("resource_missing"),
)
async def get_payment(
    payment_id: uuid.UUID,
    request: Request,
    caller: Annotated[Caller, Depends(require("payments:read"))],
) -> Payment:
    """A payment: its status, when it reached each stage, its failure or
    settlement, and when its next stage is expected."""
    gateway = gateway_of(request)
    row = await gateway.store.payment(caller.merchant.merchant_id, payment_id)
    if row is None:
        raise ApiError("resource_missing", f"no payment {payment_id}", "id")
    (payment,) = await views(gateway, [row])
    return payment


@router.get(
    "",
    response_model=PaymentList,
    responses=responses("invalid_cursor"),
)
async def list_payments(
    request: Request,
    caller: Annotated[Caller, Depends(require("payments:read"))],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: uuid.UUID | None = None,
    status: Status | None = None,
) -> PaymentList:
    """Your payments, newest first: the page after ``starting_after`` (the last
    id of the previous page), optionally only those in ``status``."""
    gateway = gateway_of(request)
    merchant_id = caller.merchant.merchant_id
    if (
        starting_after is not None
        and await gateway.store.payment(merchant_id, starting_after) is None
    ):
        raise ApiError("invalid_cursor", f"no payment {starting_after}", "starting_after")
    statuses = [status] if status else None
    rows = await gateway.store.payments(merchant_id, limit + 1, starting_after, statuses)
    return PaymentList(data=await views(gateway, rows[:limit]), has_more=len(rows) > limit)

"""Fraud stage (consumes ``payments.requested``): validate, score, hold funds.

One terminal decision per payment id: a replayed request is recognised in the
``payments`` table and ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.base import outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import FraudCheck, PaymentFailed, PaymentRequested, PaymentScored
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED
from services.fraud.rules import Velocity, score
from services.settings import Settings
from streams.outcomes import Emit, Outcome, dead, ignored, republish
from streams.state import Balance, PaymentState, Status, VelocityWindow

FIELD_CODES = {
    "amount": FailureCode.INVALID_AMOUNT,
    "payee_address": FailureCode.INVALID_ADDRESS,
    "currency": FailureCode.UNKNOWN_CURRENCY,
}


@dataclass
class FraudDeps:
    settings: Settings
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    velocity: MutableMapping[str, VelocityWindow]
    clock: Callable[[], datetime]


def _payment_id(obj: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(obj["payment_id"]))
    except (KeyError, TypeError, ValueError):
        return None


def _align(balances: MutableMapping[str, Balance], state: PaymentState) -> None:
    """Make the payer's balance agree with the payment's status (after a crash)."""
    if state.status in (Status.REJECTED, Status.REQUESTED):
        return
    balance = balances.get(state.payer_account, Balance())
    aligned = balance.aligned(state)
    if aligned != balance:
        balances[state.payer_account] = aligned


def _code_of(error: ValidationError) -> FailureCode:
    fields = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
    for name, code in FIELD_CODES.items():
        if name in fields:
            return code
    return FailureCode.INVALID_SCHEMA


def _reject(
    deps: FraudDeps,
    key: str,
    state: PaymentState,
    code: FailureCode,
    detail: str = "",
    fraud: FraudCheck | None = None,
) -> Outcome:
    failed = PaymentFailed(
        event_id=outcome_event_id("failed", state.payment_id),
        payment_id=state.payment_id,
        payer_account=state.payer_account or None,
        amount=state.amount or None,
        code=code,
        reason=FAILURE_REASONS[code] + (f": {detail}" if detail else ""),
        fraud=fraud,
        requested_at=state.requested_at,
        failed_at=deps.clock(),
    )
    rejected = state.moved(Status.REJECTED).with_output(PAYMENTS_FAILED, failed)
    deps.payments[str(state.payment_id)] = rejected
    return Outcome(emits=(Emit(PAYMENTS_FAILED, key, failed),), note=code.value)


def handle_request(raw: bytes, key: str, deps: FraudDeps) -> Outcome:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return dead(f"not JSON: {exc}")
    payment_id = _payment_id(obj) if isinstance(obj, dict) else None
    if payment_id is None:
        return dead("no valid payment_id: the failure cannot be addressed to anyone")
    known = deps.payments.get(str(payment_id))
    if known is not None:
        _align(deps.balances, known)
        return republish(known.outputs, (FRAUD_SCORED, PAYMENTS_FAILED), key, "duplicate")
    now = deps.clock()
    try:
        request = PaymentRequested.model_validate(obj)
    except ValidationError as exc:
        placeholder = PaymentState(
            payment_id=payment_id,
            payer_account=str(obj.get("payer_account", ""))[:64],
            payee_address="",
            amount=0,
            currency="",
            status=Status.REQUESTED,
            requested_at=now,
        )
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _reject(deps, key, placeholder, _code_of(exc), detail[:500])
    return _decide(request, key, deps, now)


def _decide(request: PaymentRequested, key: str, deps: FraudDeps, now: datetime) -> Outcome:
    s = deps.settings
    state = PaymentState(
        payment_id=request.payment_id,
        payer_account=request.payer_account,
        payee_address=request.payee_address,
        amount=request.amount,
        currency=request.currency,
        merchant_id=request.merchant_id,
        status=Status.REQUESTED,
        requested_at=request.requested_at,
    )
    if request.currency not in s.currencies:
        return _reject(deps, key, state, FailureCode.UNKNOWN_CURRENCY, request.currency)
    if request.amount > s.max_payment_amount:
        return _reject(deps, key, state, FailureCode.AMOUNT_OVER_LIMIT)
    if request.payee_address.lower() == request.payer_account.lower():
        return _reject(deps, key, state, FailureCode.SELF_PAYMENT)

    started = time.perf_counter_ns()
    now_ms = int(now.timestamp() * 1000)
    window_ms = s.fraud_velocity_window_s * 1000
    window = deps.velocity.get(request.payer_account, VelocityWindow())
    verdict = score(request, Velocity(*window.recent(now_ms, window_ms)), s)
    deps.velocity[request.payer_account] = window.add(now_ms, window_ms, request.amount)
    check = FraudCheck(
        score=verdict.score,
        decision=verdict.decision,
        rules_triggered=verdict.rules_triggered,
        check_duration_us=(time.perf_counter_ns() - started) // 1000,
    )
    if verdict.decision == "BLOCK":
        return _reject(
            deps, key, state, FailureCode.FRAUD_BLOCKED, ",".join(verdict.rules_triggered), check
        )

    balance = deps.balances.get(request.payer_account, Balance())
    held = str(request.payment_id) in balance.holds  # a replay after a partial crash
    if not held and balance.available < request.amount:
        return _reject(deps, key, state, FailureCode.INSUFFICIENT_FUNDS, fraud=check)
    deps.balances[request.payer_account] = balance.hold(str(request.payment_id), request.amount)
    if verdict.decision == "REVIEW":
        deps.payments[str(request.payment_id)] = state.moved(Status.REVIEW)
        return ignored("review")
    scored = PaymentScored(
        event_id=outcome_event_id("scored", request.payment_id),
        request=request,
        fraud=check,
        scored_at=deps.clock(),
    )
    approved = state.moved(Status.SCORED).with_output(FRAUD_SCORED, scored)
    deps.payments[str(request.payment_id)] = approved
    return Outcome(emits=(Emit(FRAUD_SCORED, key, scored),), note="approved")

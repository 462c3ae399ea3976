"""Fraud stage (consumes ``payments.requested``): validate, score, hold funds.

A payer's state (balance, velocity, payments) lives in one partition: its
payer's (``partition_for(payer_account)``, murmur2). A request read on another
partition is re-routed there, unchanged, before anything is written; every
output goes to the partition it was read from, keyed by the payer.

One terminal decision per payment id: a replayed request is recognised in the
``payments`` table and answered with the records published for it; the same id
with another body is a ``PAYMENT_ID_CONFLICT`` that leaves the payment alone.
A payment retired from the table (``streams/retention.py``) is still
recognised, in the ``retired`` table: any request with its id is a
``PAYMENT_ID_CONFLICT`` (its outcome was published long ago and is not
published again).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.base import Record, conflict_event_id, outcome_event_id
from schemas.codes import FAILURE_REASONS, FailureCode, invalid_code
from schemas.merchants import Merchant
from schemas.onchain import ZERO_ADDRESS
from schemas.partitioning import partition_for
from schemas.payments import FraudCheck, PaymentFailed, PaymentRequested, PaymentScored
from schemas.review import ReviewHeld
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED, PAYMENTS_REQUESTED, PAYMENTS_REVIEW
from services.fraud.rules import Velocity, score
from services.settings import Settings
from streams.outcomes import Emit, Outcome, dead
from streams.state import (
    NO_BALANCE,
    Balance,
    PaymentState,
    RetiredPayment,
    Status,
    VelocityWindow,
    payment_key,
)


class Tidy(Protocol):
    def tidy(self, partition: int) -> None: ...


@dataclass
class FraudDeps:
    settings: Settings
    payments: MutableMapping[str, PaymentState]
    balances: MutableMapping[str, Balance]
    velocity: MutableMapping[str, VelocityWindow]
    clock: Callable[[], datetime]
    # Lower-case addresses that can never be paid besides the zero address and
    # the payee denylist: the deployment's token and settlement contracts.
    unpayable: frozenset[str] = frozenset()
    # The registered merchants (the worker's MerchantDirectory, kept fresh).
    merchants: Mapping[str, Merchant] = field(default_factory=dict)
    # Ids of payments retired from ``payments``, and what retires them
    # (streams/retention.py; None in unit tests of the decisions alone).
    retired: Mapping[str, RetiredPayment] = field(default_factory=dict)
    retention: Tidy | None = None
    refused: frozenset[str] = field(init=False)  # all of them, and the zero address

    def __post_init__(self) -> None:
        denied = {a.lower() for a in self.settings.payee_denylist}
        self.refused = frozenset({ZERO_ADDRESS, *denied, *(a.lower() for a in self.unpayable)})

    def payable(self, address: str) -> bool:
        return address.lower() not in self.refused


def _payment_id(obj: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(obj["payment_id"]))
    except (KeyError, TypeError, ValueError):
        return None


def _align(balances: MutableMapping[str, Balance], state: PaymentState) -> None:
    """Make the payer's balance agree with the payment's status (after a crash)."""
    if state.status in (Status.REJECTED, Status.REQUESTED):
        return
    balance = balances.get(state.payer_account, NO_BALANCE)
    aligned = balance.aligned(state)
    if aligned != balance:
        balances[state.payer_account] = aligned


def _code_of(error: ValidationError) -> FailureCode:
    return invalid_code({str(e["loc"][0]) for e in error.errors() if e["loc"]})


@dataclass(frozen=True)
class Here:
    """Where the outputs for one record go: the partition it was read from (its
    payer's, once re-routed), keyed by the payer (the Kafka key may be empty or
    another account's). ``partition`` None: by key (callers without a Kafka
    record, and a request without a payer read with no partition)."""

    key: str
    partition: int | None

    def emit(self, topic: str, value: Record | str, key: str = "") -> Emit:
        return Emit(topic, key or self.key, value, self.partition)


def _reject(
    deps: FraudDeps,
    here: Here,
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
    deps.payments[payment_key(state.payer_account, state.payment_id)] = rejected
    emit = here.emit(PAYMENTS_FAILED, failed, state.payer_account)
    return Outcome(emits=(emit,), note=code.value)


def handle_request(raw: bytes, key: str, deps: FraudDeps, partition: int | None = None) -> Outcome:
    """Decide one ``payments.requested`` record read from ``partition``.

    A request whose ``payer_account`` is a string and that was read off its
    payer's partition is re-routed there with its exact bytes; nothing is
    written. ``key`` (the Kafka key) only addresses the rejection of a request
    without a usable payer. ``partition`` None: the caller has no Kafka record
    (tests, tools) and the request counts as read on its payer's partition.
    """
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return dead(f"not JSON: {exc}")
    payment_id = _payment_id(obj) if isinstance(obj, dict) else None
    if payment_id is None:
        return dead("no valid payment_id: the failure cannot be addressed to anyone")
    payer = obj.get("payer_account")
    if not isinstance(payer, str):  # rejected below, wherever it is: no balance is touched
        return _process(obj, payment_id, Here(key, partition), deps)
    home = partition_for(payer, deps.settings.kafka_partitions)
    if partition is not None and partition != home:
        return _reroute(raw, payer, home)
    return _process(obj, payment_id, Here(payer, home), deps)


def _reroute(raw: bytes, payer: str, home: int) -> Outcome:
    """A request off its payer's partition: the same bytes to the payer's
    partition, keyed by the payer, where its state lives. A replay of the
    misplaced original is re-routed again; the copies are one payment there."""
    try:
        text = raw.decode("utf-8")  # Emit takes a str; UTF-8 round-trips exactly
    except UnicodeDecodeError as exc:
        return dead(f"not UTF-8, cannot be re-routed to partition {home}: {exc}")
    return Outcome(emits=(Emit(PAYMENTS_REQUESTED, payer, text, home),), note="rerouted")


def _process(obj: dict[str, Any], payment_id: uuid.UUID, here: Here, deps: FraudDeps) -> Outcome:
    payer = obj.get("payer_account")
    key = payment_key(payer if isinstance(payer, str) else "", payment_id)
    known = deps.payments.get(key)
    now = deps.clock()
    if known is None and key in deps.retired:
        return _retired(obj, payment_id, here, deps)
    try:
        request = PaymentRequested.model_validate(obj)
    except ValidationError as exc:
        if known is not None:
            return _republish(known, here, deps)
        return _invalid(obj, payment_id, exc, here, deps, now)
    if known is None:
        return _decide(request, here, deps, now)
    digest = request.digest()
    if known.request_digest is not None and known.request_digest != digest:
        return _conflict(request, digest, here, deps)
    return _republish(known, here, deps)  # a replay or a producer's retry (or state without digest)


def _republish(known: PaymentState, here: Here, deps: FraudDeps) -> Outcome:
    """A known payment id: publish again what was published for it (identical
    records). Payments are kept per payer, so the known payment is this payer's
    and ``here`` is its partition."""
    _align(deps.balances, known)
    topics = (PAYMENTS_REVIEW, FRAUD_SCORED, PAYMENTS_FAILED)
    emits = tuple(here.emit(t, known.outputs[t]) for t in topics if t in known.outputs)
    return Outcome(emits=emits, note="duplicate")


def _retired(obj: dict[str, Any], payment_id: uuid.UUID, here: Here, deps: FraudDeps) -> Outcome:
    """The id of a payment retired long ago (its state is gone, its id kept):
    answered ``PAYMENT_ID_CONFLICT`` with an event id of this body's own, and
    nothing else is touched."""
    now = deps.clock()
    code = FailureCode.PAYMENT_ID_CONFLICT
    body = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
    payer, amount = obj.get("payer_account"), obj.get("amount")
    failed = PaymentFailed(
        event_id=conflict_event_id(payment_id, f"retired:{body}"),
        occurred_at=now,
        payment_id=payment_id,
        payer_account=payer if isinstance(payer, str) else None,
        amount=amount if type(amount) is int and amount > 0 else None,
        code=code,
        reason=FAILURE_REASONS[code] + ": the payment with this id ended long ago "
        "(payment_retention_s); its outcome was published then and is not published again",
        requested_at=_aware(obj.get("requested_at")),
        failed_at=now,
    )
    return Outcome(emits=(here.emit(PAYMENTS_FAILED, failed),), note=code.value)


def _aware(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _conflict(request: PaymentRequested, digest: str, here: Here, deps: FraudDeps) -> Outcome:
    """The id is the known payment's, the body another one: answer this request
    with its own rejection (its own event id: one per conflicting body) and leave
    the payment's state and every balance alone. Nothing is stored: a replay
    publishes the same record again (same event id; the times are the replay's)."""
    now = deps.clock()
    code = FailureCode.PAYMENT_ID_CONFLICT
    failed = PaymentFailed(
        event_id=conflict_event_id(request.payment_id, digest),
        occurred_at=now,
        payment_id=request.payment_id,
        payer_account=request.payer_account,
        amount=request.amount,
        code=code,
        reason=FAILURE_REASONS[code],
        requested_at=request.requested_at,
        failed_at=now,
    )
    return Outcome(
        emits=(here.emit(PAYMENTS_FAILED, failed, request.payer_account),), note=code.value
    )


def _invalid(
    obj: dict[str, Any],
    payment_id: uuid.UUID,
    exc: ValidationError,
    here: Here,
    deps: FraudDeps,
    now: datetime,
) -> Outcome:
    """A new payment id whose body does not validate: rejected with a code."""
    payer = obj.get("payer_account")
    placeholder = PaymentState(
        payment_id=payment_id,
        payer_account=str(payer)[:64] if payer is not None else "",
        payee_address="",
        amount=0,
        currency="",
        status=Status.REQUESTED,
        requested_at=now,
    )
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return _reject(deps, here, placeholder, _code_of(exc), detail[:500])


def _decide(request: PaymentRequested, here: Here, deps: FraudDeps, now: datetime) -> Outcome:
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
        request_digest=request.digest(),
    )
    if request.currency not in s.currencies:
        return _reject(deps, here, state, FailureCode.UNKNOWN_CURRENCY, request.currency)
    if abs(request.requested_at - now) > timedelta(seconds=s.requested_at_window_s):
        detail = f"{request.requested_at.isoformat()} vs {now.isoformat()}"
        return _reject(deps, here, state, FailureCode.REQUESTED_AT_OUT_OF_WINDOW, detail)
    if request.amount > s.max_payment_amount:
        return _reject(deps, here, state, FailureCode.AMOUNT_OVER_LIMIT)
    if request.payee_address.lower() == request.payer_account.lower():
        return _reject(deps, here, state, FailureCode.SELF_PAYMENT)
    if not deps.payable(request.payee_address):
        return _reject(deps, here, state, FailureCode.PAYEE_NOT_PAYABLE)
    if request.merchant_id is not None:
        merchant = deps.merchants.get(request.merchant_id)
        if merchant is None:
            return _reject(deps, here, state, FailureCode.UNKNOWN_MERCHANT, request.merchant_id)
        if not merchant.pays_to(request.payee_address):
            return _reject(deps, here, state, FailureCode.NOT_MERCHANT_PAYEE, request.merchant_id)
        state = state.model_copy(update={"fee": merchant.fee_for(request.amount)})

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
            deps, here, state, FailureCode.FRAUD_BLOCKED, ",".join(verdict.rules_triggered), check
        )

    balance = deps.balances.get(request.payer_account, NO_BALANCE)
    held = str(request.payment_id) in balance.holds  # a replay after a partial crash
    if not held and balance.frozen:
        return _reject(deps, here, state, FailureCode.ACCOUNT_FROZEN, fraud=check)
    if not held and balance.available < request.amount:
        return _reject(deps, here, state, FailureCode.INSUFFICIENT_FUNDS, fraud=check)
    deps.balances[request.payer_account] = balance.hold(str(request.payment_id), request.amount)
    if verdict.decision == "REVIEW":
        return _hold_for_review(request, check, state, here, deps)
    scored = PaymentScored(
        event_id=outcome_event_id("scored", request.payment_id),
        request=request,
        fraud=check,
        scored_at=deps.clock(),
        fee=state.fee,
    )
    approved = state.moved(Status.SCORED).with_output(FRAUD_SCORED, scored)
    deps.payments[payment_key(request.payer_account, request.payment_id)] = approved
    return Outcome(emits=(here.emit(FRAUD_SCORED, scored),), note="approved")


def _hold_for_review(
    request: PaymentRequested, check: FraudCheck, state: PaymentState, here: Here, deps: FraudDeps
) -> Outcome:
    """REVIEW: the hold is taken; the payment waits for a decision on
    ``review.decisions`` (``streams/stages/review.py``) or its expiry."""
    now = deps.clock()
    held = ReviewHeld(
        event_id=outcome_event_id("review", request.payment_id),
        request=request,
        fraud=check,
        held_at=now,
        expires_at=now + timedelta(seconds=deps.settings.review_expiry_s),
    )
    waiting = state.moved(Status.REVIEW).with_output(PAYMENTS_REVIEW, held)
    deps.payments[payment_key(request.payer_account, request.payment_id)] = waiting
    return Outcome(emits=(here.emit(PAYMENTS_REVIEW, held),), note="review")

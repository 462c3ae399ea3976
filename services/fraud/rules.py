"""Rules that score a payment request: amount thresholds, per-payer velocity
over a sliding window, and a payee blocklist. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.payments import Decision, PaymentRequested
from services.settings import Settings

REVIEW_AT = 500
BLOCK_AT = 1000


@dataclass(frozen=True)
class Velocity:
    """What the payer did in the window before this request."""

    count: int
    amount: int


@dataclass(frozen=True)
class Verdict:
    score: int
    decision: Decision
    rules_triggered: tuple[str, ...]


def score(request: PaymentRequested, velocity: Velocity, settings: Settings) -> Verdict:
    points = 0
    fired: list[str] = []

    def rule(name: str, hit: bool, weight: int) -> None:
        nonlocal points
        if hit:
            points += weight
            fired.append(name)

    rule("PAYEE_BLOCKLISTED", request.payee_address in settings.fraud_blocklist, BLOCK_AT)
    rule("AMOUNT_EXTREME", request.amount >= settings.fraud_block_amount, BLOCK_AT)
    rule("AMOUNT_HIGH", request.amount >= settings.fraud_review_amount, 300)
    rule("VELOCITY_COUNT", velocity.count + 1 > settings.fraud_velocity_max_count, REVIEW_AT)
    rule(
        "VELOCITY_AMOUNT",
        velocity.amount + request.amount > settings.fraud_velocity_max_amount,
        REVIEW_AT,
    )
    capped = min(points, BLOCK_AT)
    decision: Decision = (
        "BLOCK" if capped >= BLOCK_AT else "REVIEW" if capped >= REVIEW_AT else "APPROVE"
    )
    return Verdict(capped, decision, tuple(fired))

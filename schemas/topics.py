"""Every topic of the pipeline, declared once. Most are keyed by the payer
account id; the records of a partition-batch (``chain.submitted``,
``chain.events``) are routed to their payers' partition explicitly, see
docs/architecture.md."""

from __future__ import annotations

from dataclasses import dataclass

PAYMENTS_REQUESTED = "payments.requested"
FRAUD_SCORED = "fraud.scored"
CHAIN_SUBMITTED = "chain.submitted"
CHAIN_EVENTS = "chain.events"
PAYMENTS_SETTLED = "payments.settled"
PAYMENTS_FAILED = "payments.failed"
PAYMENTS_DLQ = "payments.dlq"
RECONCILIATION_ALERTS = "reconciliation.alerts"
PAYMENTS_REVIEW = "payments.review"
REVIEW_DECISIONS = "review.decisions"
PAYMENTS_REORGED = "payments.reorged"
PAYMENTS_FINALIZED = "payments.finalized"
DEPOSITS_CREDITED = "deposits.credited"

# What the stream worker's agents consume (its consumer group is the app id).
WORKER_CONSUMES = (
    PAYMENTS_REQUESTED,
    FRAUD_SCORED,
    CHAIN_SUBMITTED,
    CHAIN_EVENTS,
    REVIEW_DECISIONS,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    purpose: str
    compacted: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(PAYMENTS_REQUESTED, "payer account", "requests from upstream producers"),
    TopicSpec(FRAUD_SCORED, "payer account", "approved, held, scored requests"),
    TopicSpec(
        CHAIN_SUBMITTED, "batch id", "batches of payments sent to the chain, or refused by it"
    ),
    TopicSpec(
        CHAIN_EVENTS, "blocks", "confirmed settlements and deposits from the chain, per poll"
    ),
    TopicSpec(PAYMENTS_SETTLED, "payer account", "settled payments, for downstream consumers"),
    TopicSpec(PAYMENTS_FAILED, "payer account", "failed payments with a stable code"),
    TopicSpec(PAYMENTS_DLQ, "source key", "undecodable records with their bytes and offset"),
    TopicSpec(RECONCILIATION_ALERTS, "payer account", "chain and engine disagree"),
    TopicSpec(PAYMENTS_REVIEW, "payer account", "payments held for a review decision"),
    TopicSpec(REVIEW_DECISIONS, "payer account", "review decisions: approve, deny, expire"),
    TopicSpec(PAYMENTS_FINALIZED, "payer account", "settlements finality_depth blocks deep"),
    TopicSpec(PAYMENTS_REORGED, "payer account", "soft settlements a reorg removed"),
    TopicSpec(DEPOSITS_CREDITED, "account", "deposits credited, and reversed by reorgs"),
)

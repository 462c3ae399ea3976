"""Stable failure codes of ``payments.failed`` (listed in docs/consumers.md)."""

from __future__ import annotations

from enum import StrEnum


class FailureCode(StrEnum):
    INVALID_SCHEMA = "INVALID_SCHEMA"  # a field is missing, malformed or unknown
    INVALID_AMOUNT = "INVALID_AMOUNT"  # not a positive integer of minor units
    AMOUNT_OVER_LIMIT = "AMOUNT_OVER_LIMIT"  # above the per-payment maximum
    INVALID_ADDRESS = "INVALID_ADDRESS"  # payee is not an EIP-55 checksummed address
    PAYEE_NOT_PAYABLE = (
        "PAYEE_NOT_PAYABLE"  # the zero address, the engine's contracts, a denied payee
    )
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"  # not a configured token symbol
    REQUESTED_AT_OUT_OF_WINDOW = "REQUESTED_AT_OUT_OF_WINDOW"  # too far from the engine's clock
    UNKNOWN_MERCHANT = "UNKNOWN_MERCHANT"  # merchant_id names no registered merchant
    NOT_MERCHANT_PAYEE = "NOT_MERCHANT_PAYEE"  # the payee is not the merchant's payout address
    SELF_PAYMENT = "SELF_PAYMENT"  # payer and payee are the same account
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"  # the payer's available balance is too low
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"  # a reorg took back a deposit; the account owes it
    FRAUD_BLOCKED = "FRAUD_BLOCKED"  # the rules engine decided BLOCK
    SETTLEMENT_REJECTED = "SETTLEMENT_REJECTED"  # the chain refused the batch for good
    SETTLEMENT_TIMEOUT = "SETTLEMENT_TIMEOUT"  # not mined in time, cancelled, proven unpaid
    SIGNER_REFUSED = "SIGNER_REFUSED"  # the approval signer's policy refuses it for good
    SETTLEMENT_MISMATCH = "SETTLEMENT_MISMATCH"  # paid otherwise on chain; an operator rejected it
    PAYMENT_ID_CONFLICT = "PAYMENT_ID_CONFLICT"  # the id was used for a different request
    REVIEW_DENIED = "REVIEW_DENIED"  # held for review; an operator denied it
    REVIEW_EXPIRED = "REVIEW_EXPIRED"  # held for review; no decision before it expired


# The code of a request that does not validate: by the first of these fields at
# fault (in this order), else INVALID_SCHEMA. The Kafka path and the gateway share it.
FIELD_CODES = {
    "amount": FailureCode.INVALID_AMOUNT,
    "payee_address": FailureCode.INVALID_ADDRESS,
    "currency": FailureCode.UNKNOWN_CURRENCY,
}


def invalid_code(fields: set[str]) -> FailureCode:
    """The failure code of a request whose ``fields`` did not validate."""
    for name, code in FIELD_CODES.items():
        if name in fields:
            return code
    return FailureCode.INVALID_SCHEMA


# Failures of a payment the engine accepted and could not settle: they count
# against its success rate. Every other code refuses a request the rules do
# not allow (a correct answer, not a failure of the engine).
ENGINE_FAILURES = frozenset(
    {
        FailureCode.SETTLEMENT_REJECTED,
        FailureCode.SETTLEMENT_TIMEOUT,
        FailureCode.SIGNER_REFUSED,
        FailureCode.SETTLEMENT_MISMATCH,
        FailureCode.REVIEW_EXPIRED,
    }
)

FAILURE_REASONS: dict[FailureCode, str] = {
    FailureCode.INVALID_SCHEMA: "the request does not match the payments.requested schema",
    FailureCode.INVALID_AMOUNT: "amount must be a positive integer of minor units",
    FailureCode.AMOUNT_OVER_LIMIT: "amount is above the per-payment limit",
    FailureCode.INVALID_ADDRESS: "payee_address must be an EIP-55 checksummed address",
    FailureCode.PAYEE_NOT_PAYABLE: (
        "the payee can never be paid (the zero address, the token or settlement contract, "
        "or a payee on the payee denylist)"
    ),
    FailureCode.UNKNOWN_CURRENCY: "currency is not a configured token",
    FailureCode.REQUESTED_AT_OUT_OF_WINDOW: (
        "requested_at is further from the engine's clock than requested_at_window_s "
        "(24 h by default), either way"
    ),
    FailureCode.UNKNOWN_MERCHANT: "merchant_id names no registered merchant",
    FailureCode.NOT_MERCHANT_PAYEE: (
        "a payment for a merchant must be paid to the merchant's payout address"
    ),
    FailureCode.SELF_PAYMENT: "payer and payee are the same",
    FailureCode.ACCOUNT_FROZEN: (
        "a reorg removed a deposit the account had spent; it refuses payments until "
        "deposits repay what it owes"
    ),
    FailureCode.INSUFFICIENT_FUNDS: "the payer's available balance is lower than the amount",
    FailureCode.FRAUD_BLOCKED: "blocked by the fraud rules",
    FailureCode.SETTLEMENT_REJECTED: "the settlement transaction was refused by the chain",
    FailureCode.SETTLEMENT_TIMEOUT: (
        "the settlement transaction was not mined in time and was cancelled; the chain "
        "shows the payment unpaid"
    ),
    FailureCode.SIGNER_REFUSED: (
        "the approval signer's policy refuses this payment for good (its payee is not "
        "allowed, or its amount alone is above the signer's per-batch cap)"
    ),
    FailureCode.SETTLEMENT_MISMATCH: (
        "the chain paid this payment's sequence differently from the request (payee, "
        "amount or fee) and an operator rejected that payout as its settlement; the payer "
        "is not charged"
    ),
    FailureCode.PAYMENT_ID_CONFLICT: (
        "the payment id was already used for a different request (payer, payee, amount, "
        "currency or merchant differ); the first request keeps it"
    ),
    FailureCode.REVIEW_DENIED: "held for review and denied by an operator",
    FailureCode.REVIEW_EXPIRED: "held for review and not decided in time",
}

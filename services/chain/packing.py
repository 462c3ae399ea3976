"""The settlement contract's packed formats, in one place.

A batch is 48 bytes per payment (payee 20 | amount 12 | sequence 8 | payer ref 8,
big-endian). Account references are the first 8 bytes of keccak256 of the account id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils.crypto import keccak

from services.errors import require

RECORD_BYTES = 48
MAX_UINT64 = 2**64 - 1
MAX_UINT96 = 2**96 - 1


def account_ref(account_id: str) -> int:
    """The uint64 on-chain reference of an engine account id."""
    return int.from_bytes(keccak(text=account_id)[:8], "big")


@dataclass(frozen=True)
class PaymentRecord:
    """One payment of a batch, as the contract sees it."""

    payee: str  # EIP-55 address
    amount: int  # token base units
    sequence: int  # engine-assigned payment number, the double-payment guard's key
    payer_ref: int


def pack_batch(payments: Sequence[PaymentRecord]) -> bytes:
    require(len(payments) > 0, "a batch needs at least one payment")
    out = bytearray()
    for p in payments:
        require(0 < p.amount <= MAX_UINT96, "amount out of range: %s", p.amount)
        require(0 <= p.sequence <= MAX_UINT64, "sequence out of range: %s", p.sequence)
        require(0 <= p.payer_ref <= MAX_UINT64, "payer ref out of range: %s", p.payer_ref)
        out += bytes.fromhex(p.payee[2:])
        out += p.amount.to_bytes(12, "big")
        out += p.sequence.to_bytes(8, "big")
        out += p.payer_ref.to_bytes(8, "big")
    return bytes(out)


@dataclass(frozen=True)
class SettledPayment:
    """A settled payment as the chain tells it (see services/chain/events.py)."""

    payee: str
    amount: int
    sequence: int
    payer_ref: int
    batch_id: int

"""The settlement contract's packed formats, in one place.

A batch is 56 bytes per payment (payee 20 | amount 12 | sequence 8 | payer ref 8 |
fee 8, big-endian). The records themselves are in schemas/onchain.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.onchain import PaymentRecord
from services.errors import require

RECORD_BYTES = 56
MAX_UINT64 = 2**64 - 1
MAX_UINT96 = 2**96 - 1


def pack_batch(payments: Sequence[PaymentRecord]) -> bytes:
    require(len(payments) > 0, "a batch needs at least one payment")
    out = bytearray()
    for p in payments:
        require(0 < p.amount <= MAX_UINT96, "amount out of range: %s", p.amount)
        require(0 <= p.sequence <= MAX_UINT64, "sequence out of range: %s", p.sequence)
        require(0 <= p.payer_ref <= MAX_UINT64, "payer ref out of range: %s", p.payer_ref)
        require(0 <= p.fee < p.amount, "fee %s not below the amount %s", p.fee, p.amount)
        require(p.fee <= MAX_UINT64, "fee out of range: %s", p.fee)
        out += bytes.fromhex(p.payee[2:])
        out += p.amount.to_bytes(12, "big")
        out += p.sequence.to_bytes(8, "big")
        out += p.payer_ref.to_bytes(8, "big")
        out += p.fee.to_bytes(8, "big")
    return bytes(out)

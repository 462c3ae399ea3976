"""The settlement contract's packed formats, in one place.

A batch is 56 bytes per payment (payee 20 | amount 12 | sequence 8 | payer ref 8 |
fee 8, big-endian). The records themselves are in schemas/onchain.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.address import to_checksum_address

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


def unpack_batch(packed: bytes) -> list[PaymentRecord]:
    """The records of a packed batch (what the approval signer judges)."""
    require(
        len(packed) > 0 and len(packed) % RECORD_BYTES == 0,
        "a packed batch is a positive multiple of %s bytes, not %s",
        RECORD_BYTES,
        len(packed),
    )
    records = []
    for at in range(0, len(packed), RECORD_BYTES):
        r = packed[at : at + RECORD_BYTES]
        records.append(
            PaymentRecord(
                to_checksum_address("0x" + r[:20].hex()),
                int.from_bytes(r[20:32], "big"),
                int.from_bytes(r[32:40], "big"),
                int.from_bytes(r[40:48], "big"),
                int.from_bytes(r[48:56], "big"),
            )
        )
    return records

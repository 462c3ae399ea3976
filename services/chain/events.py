"""Decoding the settlement contract's logs into typed events.

A settled payment is told by three logs of one transaction: the token's
``Transfer(treasury, payee, amount - fee)``, immediately followed by the
contract's anonymous ``PaymentSettled`` (sequence | payer reference, 16 bytes,
then the fee, 8 bytes, when it is not 0), and, closing the transaction after
the batch's one fee transfer, ``BatchSettled(batchId, ...)``. See docs/chain.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from schemas.onchain import ChainEvent, DepositEvent, LogRef, SettledEvent, SettledPayment
from services.errors import InvariantViolation, require

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
DEPOSITED_TOPIC = keccak(text="Deposited(uint64,address,uint256,string)")
BATCH_SETTLED_TOPIC = keccak(text="BatchSettled(uint64,uint256,uint256,uint256,uint256)")
PAYMENT_SETTLED_BYTES = (16, 24)  # without a fee, with one


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _ref(log: Any) -> LogRef:
    return LogRef(
        block_number=int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]),
        tx_hash=_hex(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )


@dataclass
class _Open:
    """PaymentSettled logs of one transaction waiting for its BatchSettled."""

    tx_hash: str
    payments: list[tuple[SettledPayment, LogRef]]  # batch id 0 until BatchSettled


def decode_logs(logs: Iterable[Any], settlement: str, token: str) -> list[ChainEvent]:
    """Typed events from the settlement contract's logs and the token's Transfer
    logs out of the treasury, in chain order. Other logs are ignored."""
    settlement, token = settlement.lower(), token.lower()
    ordered = sorted(logs, key=lambda g: (int(g["blockNumber"]), int(g["logIndex"])))
    events: list[ChainEvent] = []
    last_transfer: tuple[LogRef, str, int] | None = None
    open_batch: _Open | None = None
    deposits_in_tx: dict[str, int] = {}  # Deposited logs seen so far, per transaction
    for log in ordered:
        address = str(log["address"]).lower()
        topics = [bytes(t) for t in log["topics"]]
        data = bytes(log["data"])
        at = _ref(log)
        if address == token and topics and topics[0] == TRANSFER_TOPIC:
            if int.from_bytes(topics[1], "big") == int(settlement, 16):
                receiver = str(to_checksum_address(topics[2][12:]))
                last_transfer = (at, receiver, int.from_bytes(data[:32], "big"))
        elif address != settlement:
            continue
        elif not topics and len(data) in PAYMENT_SETTLED_BYTES:
            if last_transfer is None:
                raise InvariantViolation(f"PaymentSettled at {at} has no token Transfer")
            require(
                last_transfer[0].tx_hash == at.tx_hash
                and last_transfer[0].log_index == at.log_index - 1,
                "PaymentSettled at %s does not follow its token Transfer",
                at,
            )
            if open_batch is None or open_batch.tx_hash != at.tx_hash:
                open_batch = _Open(at.tx_hash, [])
            sequence, payer_ref = int.from_bytes(data[:8], "big"), int.from_bytes(data[8:16], "big")
            fee = int.from_bytes(data[16:], "big")
            _, payee, net = last_transfer
            paid = SettledPayment(payee, net + fee, sequence, payer_ref, 0, fee)
            open_batch.payments.append((paid, at))
        elif topics and topics[0] == BATCH_SETTLED_TOPIC:
            batch_id = int.from_bytes(topics[1], "big")
            if open_batch is not None and open_batch.tx_hash == at.tx_hash:
                events.extend(
                    SettledEvent(replace(paid, batch_id=batch_id), where)
                    for paid, where in open_batch.payments
                )
            open_batch = None
        elif topics and topics[0] == DEPOSITED_TOPIC:
            amount, account = decode(["uint256", "string"], data)
            position = deposits_in_tx.get(at.tx_hash, 0)
            deposits_in_tx[at.tx_hash] = position + 1
            events.append(
                DepositEvent(
                    account=str(account),
                    account_ref=int.from_bytes(topics[1], "big"),
                    depositor=to_checksum_address(topics[2][12:]),
                    amount=int(amount),
                    at=at,
                    position=position,
                )
            )
    return events

"""The values that cross the chain port: a payment as the settlement contract
sees it, what a batch transaction paid, and the events the chain reports.

They live in the wire contract so that the ports, the stream stages and the
chain adapter share them without the stages importing the adapter (or web3).
Account references are the first 8 bytes of keccak256 of the account id.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.crypto import keccak


def account_ref(account_id: str) -> int:
    """The uint64 on-chain reference of an engine account id."""
    return int.from_bytes(keccak(text=account_id)[:8], "big")


ZERO_ADDRESS = "0x" + "0" * 40  # no key holds it: the token refuses to credit it


@dataclass(frozen=True)
class PaymentRecord:
    """One payment of a batch, as the contract sees it."""

    payee: str  # EIP-55 address
    amount: int  # token base units, what the payer pays
    sequence: int  # engine-assigned payment number, the double-payment guard's key
    payer_ref: int
    fee: int = 0  # of the amount, to the platform's fee recipient; the payee gets the rest


@dataclass(frozen=True)
class SettledPayment:
    """A settled payment as the chain tells it (decoded by services/chain/events.py)."""

    payee: str
    amount: int  # what the payer paid: the payee got amount - fee
    sequence: int
    payer_ref: int
    batch_id: int
    fee: int = 0


@dataclass(frozen=True)
class BatchReceipt:
    """What one settlement transaction paid."""

    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    settled: tuple[SettledPayment, ...]


@dataclass(frozen=True)
class BlockLink:
    """A block of the node's current chain, and the block it follows."""

    hash: str
    parent_hash: str


@dataclass(frozen=True)
class LogRef:
    """Where an event sits on the chain."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class SettledEvent:
    payment: SettledPayment
    at: LogRef


@dataclass(frozen=True)
class DepositEvent:
    account: str
    account_ref: int
    depositor: str
    amount: int
    at: LogRef
    position: int = 0  # among the Deposited logs of its transaction

    @property
    def deposit_id(self) -> str:
        """What identifies the deposit across reorgs: its transaction (a
        re-included transaction keeps its hash) and its place in it (the block
        and log index change when it is re-included)."""
        return deposit_id(self.at.tx_hash, self.position)


def deposit_id(tx_hash: str, position: int) -> str:
    return f"{tx_hash.lower()}:{position}"


ChainEvent = SettledEvent | DepositEvent

"""EIP-1559 fees with a cap, and the replacement bump for stuck transactions.

Nodes such as geth refuse a replacement unless both fee fields rise by at least
10 %; anvil accepts less. paystream always bumps by ``bump_bps`` (12.5 % by
default) so that a replacement that works locally also works on a real chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.errors import ChainUnavailable, require

BPS = 10_000
MIN_BUMP_BPS = 1_250


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def as_tx(self) -> dict[str, int]:
        return {
            "maxFeePerGas": self.max_fee_per_gas,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
        }


class FeeCapExceeded(ChainUnavailable):
    """The fee the network asks for is above the configured cap: wait, do not pay."""


def _ceil_bps(value: int, bps: int) -> int:
    return -(-value * (BPS + bps) // BPS)


def initial_fees(base_fee: int, priority_fee: int, max_fee_cap: int) -> Fees:
    """Room for the base fee to double, plus the tip, never above the cap."""
    if base_fee + priority_fee > max_fee_cap:
        raise FeeCapExceeded(f"base fee {base_fee} + tip {priority_fee} exceeds cap {max_fee_cap}")
    max_fee = min(2 * base_fee + priority_fee, max_fee_cap)
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=priority_fee)


def bumped(previous: Fees, base_fee: int, max_fee_cap: int, bump_bps: int = MIN_BUMP_BPS) -> Fees:
    """Fees for a replacement: both fields up by at least ``bump_bps``."""
    require(bump_bps >= MIN_BUMP_BPS, "fee bump %s bps is below %s", bump_bps, MIN_BUMP_BPS)
    tip = _ceil_bps(previous.max_priority_fee_per_gas, bump_bps)
    max_fee = max(_ceil_bps(previous.max_fee_per_gas, bump_bps), 2 * base_fee + tip)
    if max_fee > max_fee_cap:
        raise FeeCapExceeded(f"replacement needs max fee {max_fee}, above cap {max_fee_cap}")
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)

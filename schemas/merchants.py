"""A registered merchant: where its payments are paid, and the platform's fee."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import AccountId

BPS = 10_000
FEE_BPS_MAX = BPS - 1  # a fee is always below the amount (the contract requires it)


class Merchant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    merchant_id: AccountId
    name: str
    payout_address: Annotated[str, Field(pattern="^0x[0-9a-f]{40}$")]  # lower case
    fee_bps: Annotated[int, Field(ge=0, le=FEE_BPS_MAX)]

    def fee_for(self, amount: int) -> int:
        """The platform's fee out of ``amount``, rounded down (the remainder
        stays with the payee)."""
        return amount * self.fee_bps // BPS

    def pays_to(self, payee_address: str) -> bool:
        return payee_address.lower() == self.payout_address

"""The approval signer's policy: what it may approve, read from a JSON file.

    {"max_batch_amount": 5000000000000,     # token base units, one batch
     "max_daily_amount": 50000000000000,    # all batches approved in any 24 h
     "allowed_payees": ["0xAbC...", ...]}   # or null: any payee

A batch is judged on what it would pay (the sum of its amounts, fees
included); the daily amount counts each distinct batch once, however often it
is approved again (a new nonce after an expired approval pays nothing twice:
the contract skips what it paid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from eth_utils.address import is_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.onchain import PaymentRecord
from services.errors import ConfigError


class RefusalCode(StrEnum):
    BATCH_OVER_CAP = "BATCH_OVER_CAP"  # above the per-batch cap: split it, or fail a lone payment
    DAILY_CAP_REACHED = "DAILY_CAP_REACHED"  # the rolling 24 h cap is used up: wait
    PAYEE_NOT_ALLOWED = "PAYEE_NOT_ALLOWED"  # a payee outside the allowed list
    WRONG_CONTRACT = "WRONG_CONTRACT"  # another chain or contract than the signer's


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    reason: str
    payees: tuple[str, ...] = ()  # PAYEE_NOT_ALLOWED: the payees refused (lower case)


class SignerPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_amount: int = Field(gt=0)
    max_daily_amount: int = Field(gt=0)
    allowed_payees: frozenset[str] | None

    @field_validator("allowed_payees")
    @classmethod
    def _addresses(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is None:
            return None
        bad = sorted(a for a in value if not is_address(a))
        if bad:
            raise ValueError(f"not addresses: {', '.join(bad)}")
        return frozenset(a.lower() for a in value)

    @classmethod
    def load(cls, path: Path) -> SignerPolicy:
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise ConfigError(f"no signer policy at {path} (PAYSTREAM_SIGNER_POLICY_FILE)") from exc
        except (ValueError, ValidationError) as exc:
            raise ConfigError(f"the signer policy {path} is not valid: {exc}") from exc

    def judge(self, records: list[PaymentRecord], spent_24h: int) -> Refusal | None:
        """Why this batch may not be approved, or None; ``spent_24h`` is what
        the signer approved in the last 24 hours (other batches)."""
        total = sum(r.amount for r in records)
        if self.allowed_payees is not None:
            refused = sorted({r.payee.lower() for r in records} - self.allowed_payees)
            if refused:
                return Refusal(
                    RefusalCode.PAYEE_NOT_ALLOWED,
                    f"payee(s) not in the signer's allowed list: {', '.join(refused)}",
                    tuple(refused),
                )
        if total > self.max_batch_amount:
            return Refusal(
                RefusalCode.BATCH_OVER_CAP,
                f"the batch pays {total}, above the signer's per-batch cap {self.max_batch_amount}",
            )
        if spent_24h + total > self.max_daily_amount:
            return Refusal(
                RefusalCode.DAILY_CAP_REACHED,
                f"the batch pays {total}; {spent_24h} of the signer's daily cap "
                f"{self.max_daily_amount} was approved in the last 24 h",
            )
        return None

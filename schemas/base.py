"""Shared base of every record paystream writes: frozen, no unknown fields,
an ``event_id``, a ``schema_version`` and an aware ``occurred_at``."""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from eth_utils.address import is_checksum_address
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

ACCOUNT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Ledger accounts are payer ids, payee addresses and the platform's names with a
# colon (``platform:fees``): a payer id shaped like an address would share its
# ledger account with that payee, so none is accepted.
_ADDRESS_SHAPE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


@functools.lru_cache(maxsize=65_536)
def _is_checksummed(value: str) -> bool:
    """EIP-55 check (a keccak per call), remembered: payees repeat, and every
    stage validates the same address again."""
    return bool(is_checksum_address(value))


def _checksummed(value: str) -> str:
    if not _is_checksummed(value):
        raise ValueError("payee_address must be an EIP-55 checksummed address")
    return value


def _not_an_address(value: str) -> str:
    if _ADDRESS_SHAPE.match(value):
        raise ValueError("an account id cannot have the form of an address (0x and 40 hex digits)")
    return value


AccountId = Annotated[str, Field(pattern=ACCOUNT_PATTERN), AfterValidator(_not_an_address)]
Address = Annotated[str, AfterValidator(_checksummed)]


_OUTCOME_NAMESPACE = uuid.UUID("6f1d3c1e-4b59-4b7e-9a55-6a8f1f0c2d11")


def outcome_event_id(kind: str, payment_id: uuid.UUID) -> uuid.UUID:
    """The event id of a payment's record of this kind: the same on every
    publication, so a record re-published after a crash is recognisably the same."""
    return uuid.uuid5(_OUTCOME_NAMESPACE, f"{kind}:{payment_id}")


def conflict_event_id(payment_id: uuid.UUID, digest: str) -> uuid.UUID:
    """The event id of a ``PAYMENT_ID_CONFLICT`` rejection: one per conflicting
    request body, never the id of the payment's own outcome."""
    return uuid.uuid5(_OUTCOME_NAMESPACE, f"conflict:{payment_id}:{digest}")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Record(Frozen):
    """A record the pipeline writes."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)

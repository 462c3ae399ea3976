"""The chain listener's cursor: the last emitted block, and the hashes and
events of the most recent blocks (to detect reorgs and tell what they undid)."""

from __future__ import annotations

from pydantic import BaseModel


class SeenEvent(BaseModel):
    tx_hash: str
    log_index: int
    amount: int
    sequence: int | None = None
    account: str | None = None
    position: int = 0  # a deposit's place among its transaction's deposits


class SeenBlock(BaseModel):
    number: int
    hash: str
    events: list[SeenEvent] = []


class Cursor(BaseModel):
    last_block: int
    recent: list[SeenBlock] = []
    # The last block whose settlements were told final (``finality_depth`` deep).
    final_block: int = -1

"""Payment claims: each payment's one on-chain identity (its sequence number),
claimed just before its batch is sent to the chain.

``payment_id`` is the key: the first claim wins and is kept forever. A new
claim's sequence is ``partition << 40 | nextval('settlement_counter')``
(schemas/sequence.py); the counter is never reused (gaps are allowed), so no
two payments share a sequence, which the UNIQUE constraint checks again.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# MAXVALUE: the counter has 40 bits (2^40 - 1), above them the partition.
UPGRADE = r"""
CREATE SEQUENCE settlement_counter AS bigint MINVALUE 1 MAXVALUE 1099511627775 NO CYCLE;

CREATE TABLE payment_claims (
    payment_id      uuid PRIMARY KEY,
    payer_account   text NOT NULL,
    request_digest  text NOT NULL,
    partition       int NOT NULL CHECK (partition >= 0),
    sequence        bigint NOT NULL UNIQUE CHECK (sequence >= 0),
    claimed_at      timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = r"""
DROP TABLE payment_claims;
DROP SEQUENCE settlement_counter;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)

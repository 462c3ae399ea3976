"""Deposits remembered for good: one row per reorg-stable deposit id (its
transaction and place among that transaction's ``Deposited`` logs) with the
last credit or reversal the ledger booked for it (``credit``: k for the k-th
credit, -k for its reversal). The worker remembers each account's recent
deposits; one it no longer remembers is looked up here before it is decided,
so no replay (a lost listener cursor, a re-read topic) credits it twice.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE deposits (
            deposit_id    text PRIMARY KEY,
            account       text NOT NULL,
            amount        numeric(39, 0) NOT NULL CHECK (amount > 0),
            credit        integer NOT NULL CHECK (credit <> 0),
            tx_hash       text NOT NULL,
            block_number  bigint NOT NULL,
            block_hash    text NOT NULL,
            updated_at    timestamptz NOT NULL
        );
        CREATE INDEX deposits_account ON deposits (account);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE deposits")

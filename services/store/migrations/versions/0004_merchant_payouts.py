"""Merchants are paid on chain: each has a payout address (a request naming a
merchant must pay it there), registered before any API key exists (the
gateway adds keys), with a fee below 100 %. Payments keep the fee fixed when
they were scored.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE merchants
            ADD COLUMN payout_address text CHECK (payout_address ~ '^0x[0-9a-f]{40}$'),
            ALTER COLUMN api_key_hash DROP NOT NULL,
            ALTER COLUMN api_key_prefix DROP NOT NULL,
            ADD CONSTRAINT merchants_fee_below_amount CHECK (fee_percentage_bps < 10000);
        CREATE UNIQUE INDEX merchants_payout_address ON merchants (payout_address);
        ALTER TABLE payments ADD COLUMN fee bigint NOT NULL DEFAULT 0 CHECK (fee >= 0);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE payments DROP COLUMN fee;
        DROP INDEX merchants_payout_address;
        ALTER TABLE merchants
            DROP CONSTRAINT merchants_fee_below_amount,
            DROP COLUMN payout_address;
        """
    )

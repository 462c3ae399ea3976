"""Reorgs and finality: a payment's row counts the soft settlements a reorg
undid (``reorgs``), so that a replayed ``payments.settled`` of an undone
settlement never overwrites what followed it, and keeps when its settlement
became final (``finalized_at``, from ``payments.finalized``);
``reconciliation_log`` keeps the ``FROZEN`` alert of an account a reversed
deposit left owing and the ``DEEP_REORG`` alert of a reorg deeper than
finality, which halts settlement (``settlement_halts``: at most one open).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KINDS = "'UNKNOWN_SEQUENCE', 'MISMATCH', 'ORPHANED', 'TIMEOUT', 'RESOLVED', 'UNREPRESENTABLE'"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE payments ADD COLUMN reorgs integer NOT NULL DEFAULT 0, "
        "ADD COLUMN finalized_at timestamptz"
    )
    op.execute(
        f"""
        ALTER TABLE reconciliation_log DROP CONSTRAINT reconciliation_log_kind,
            ADD CONSTRAINT reconciliation_log_kind
                CHECK (kind IN ({KINDS}, 'FROZEN', 'DEEP_REORG'))
        """
    )
    op.execute(
        """
        CREATE TABLE settlement_halts (
            halt_id     bigserial PRIMARY KEY,
            reason      text NOT NULL,
            halted_at   timestamptz NOT NULL DEFAULT now(),
            resumed_at  timestamptz,
            resumed_by  text
        );
        CREATE UNIQUE INDEX settlement_halts_open ON settlement_halts ((true))
            WHERE resumed_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE settlement_halts")
    # Fails while FROZEN or DEEP_REORG rows exist: an alert is not deleted to downgrade.
    op.execute(
        f"""
        ALTER TABLE reconciliation_log DROP CONSTRAINT reconciliation_log_kind,
            ADD CONSTRAINT reconciliation_log_kind CHECK (kind IN ({KINDS}))
        """
    )
    op.execute("ALTER TABLE payments DROP COLUMN reorgs, DROP COLUMN finalized_at")

"""A payment the chain paid otherwise than requested is held in MISMATCH until an
operator accepts or rejects the chain's payout; the difference from what the
payer was charged is booked to the platform's suspense account. The
reconciler's alerts and the operators' resolutions are kept in
``reconciliation_log`` (one row per alert, one ``RESOLVED`` row per decision).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KINDS = "'payer', 'payee', 'fee', 'deposit', 'treasury'"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check,
            ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ({KINDS}, 'suspense'));
        ALTER TABLE reconciliation_log
            ADD CONSTRAINT reconciliation_log_kind CHECK (kind IN
                ('UNKNOWN_SEQUENCE', 'MISMATCH', 'ORPHANED', 'TIMEOUT', 'RESOLVED'));
        CREATE INDEX reconciliation_log_payment ON reconciliation_log (payment_id, kind);
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP INDEX reconciliation_log_payment;
        ALTER TABLE reconciliation_log DROP CONSTRAINT reconciliation_log_kind;
        ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check,
            ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ({KINDS}));
        """
    )

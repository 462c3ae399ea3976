"""Admin actions on the settlement contract (``paystream admin ...``): who
asked for what, with which parameters, and the transactions that did it. Each
row's changes are written with their audit-log row, in one transaction.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE admin_actions (
            action_id     uuid PRIMARY KEY,
            action        text NOT NULL,
            params        jsonb NOT NULL,
            actor         text NOT NULL,
            requested_at  timestamptz NOT NULL DEFAULT now(),
            status        text NOT NULL DEFAULT 'requested'
                          CHECK (status IN ('requested', 'done', 'failed')),
            tx_hashes     text[] NOT NULL DEFAULT '{}',
            error         text,
            ended_at      timestamptz
        );
        CREATE INDEX admin_actions_requested ON admin_actions (requested_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE admin_actions")

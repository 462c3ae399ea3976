"""Per-key rate limits: requests per second and burst of an API key (NULL: the
gateway's defaults, ``PAYSTREAM_GATEWAY_RATE_PER_S`` and ``..._BURST``).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_keys
            ADD COLUMN rate_per_s double precision CHECK (rate_per_s > 0),
            ADD COLUMN burst integer CHECK (burst >= 1);
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN rate_per_s, DROP COLUMN burst")

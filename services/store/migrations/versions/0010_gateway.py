"""The merchant gateway: merchants' API keys (hashed, with scopes, revocable),
mandates (a payer account lets a merchant collect from it), the payments the
gateway created, its idempotency keys (the first answer, kept for replay), and
every payment's stage times (the ledger sink writes one row per stage reached:
the gateway's read model) with the status they make (``paystream_payment_status``).
The unused key columns of ``merchants`` go: a merchant may hold several keys
over time, in ``api_keys``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE merchants DROP COLUMN api_key_hash, DROP COLUMN api_key_prefix;
        CREATE TABLE api_keys (
            key_id       text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
            merchant_id  text NOT NULL REFERENCES merchants,
            key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),  -- SHA-256 of the key
            scopes       text[] NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            revoked_at   timestamptz
        );
        CREATE INDEX api_keys_merchant ON api_keys (merchant_id);
        CREATE TABLE mandates (
            account_id   text NOT NULL,
            merchant_id  text NOT NULL REFERENCES merchants,
            max_amount   numeric(39, 0) CHECK (max_amount > 0),
            granted_at   timestamptz NOT NULL DEFAULT now(),
            revoked_at   timestamptz,
            PRIMARY KEY (account_id, merchant_id)
        );
        CREATE TABLE gateway_payments (
            payment_id     uuid PRIMARY KEY,
            merchant_id    text NOT NULL REFERENCES merchants,
            payer_account  text NOT NULL,
            payee_address  text NOT NULL,
            amount         numeric(39, 0) NOT NULL CHECK (amount > 0),
            currency       text NOT NULL,
            metadata       jsonb,
            created_at     timestamptz NOT NULL
        );
        CREATE INDEX gateway_payments_merchant_time
            ON gateway_payments (merchant_id, created_at DESC, payment_id DESC);
        CREATE TABLE idempotency_keys (
            merchant_id   text NOT NULL REFERENCES merchants,
            key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
            request_hash  text NOT NULL,
            payment_id    uuid NOT NULL,
            status_code   integer,  -- NULL while the first request is being answered
            response      text,  -- the first answer's body, byte for byte
            created_at    timestamptz NOT NULL DEFAULT now(),
            claimed_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (merchant_id, key)
        );
        CREATE TABLE payment_stages (
            payment_id  uuid NOT NULL,
            stage       text NOT NULL CHECK (stage IN ('requested', 'review', 'scored',
                            'submitted', 'settled', 'finalized', 'failed', 'rejected',
                            'reorged')),
            at          timestamptz NOT NULL,
            detail      jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (payment_id, stage)
        );
        CREATE INDEX payment_stages_time ON payment_stages (stage, at);
        CREATE FUNCTION paystream_payment_status(p uuid) RETURNS text
        LANGUAGE sql STABLE AS $$
            WITH s AS (
                SELECT stage, coalesce((detail->>'reorgs')::int, 0) AS reorgs
                FROM payment_stages WHERE payment_id = p
            ), undone AS (
                SELECT coalesce(max(reorgs), 0) AS n FROM s WHERE stage = 'reorged'
            )
            SELECT coalesce(
                (SELECT stage FROM s WHERE stage IN ('failed', 'rejected') LIMIT 1),
                (SELECT s.stage FROM s, undone
                 WHERE s.stage <> 'reorged'
                   AND (s.stage NOT IN ('settled', 'finalized') OR s.reorgs >= undone.n)
                 ORDER BY array_position(ARRAY['requested', 'review', 'scored', 'submitted',
                     'settled', 'finalized'], s.stage) DESC
                 LIMIT 1),
                'requested')
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION paystream_payment_status(uuid);
        DROP TABLE payment_stages;
        DROP TABLE idempotency_keys;
        DROP TABLE gateway_payments;
        DROP TABLE mandates;
        DROP TABLE api_keys;
        ALTER TABLE merchants ADD COLUMN api_key_hash bytea, ADD COLUMN api_key_prefix text;
        """
    )

"""The initial schema: accounts, merchants, payments (monthly partitions), fraud
checks, providers, per-minute metrics, the double-entry ledger, idempotency
records, the reconciliation log and the hash-chained audit log.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Money is numeric(39,0): an integer of minor units up to uint96 and beyond,
# never a float. Percentages are integer basis points.
UPGRADE = r"""
CREATE TABLE users (
    user_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   text NOT NULL UNIQUE CHECK (account_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    email        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_methods (
    method_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (user_id),
    kind            text NOT NULL CHECK (kind IN ('wallet', 'token', 'card')),
    wallet_address  text CHECK (wallet_address ~ '^0x[0-9A-Fa-f]{40}$'),
    token_symbol    text,
    last_four       char(4) CHECK (last_four ~ '^[0-9]{4}$'),  -- never a full card number
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_methods_user ON payment_methods (user_id);

CREATE TABLE merchants (
    merchant_id         text PRIMARY KEY CHECK (merchant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                text NOT NULL,
    fee_percentage_bps  integer NOT NULL CHECK (fee_percentage_bps BETWEEN 0 AND 10000),
    webhook_url         text,
    api_key_hash        bytea NOT NULL,      -- SHA-256 of the key; the key is never stored
    api_key_prefix      text NOT NULL,       -- the first characters, to tell keys apart
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_providers (
    provider_id          text PRIMARY KEY,
    chain_id             bigint NOT NULL,
    token_address        text NOT NULL,
    settlement_address   text NOT NULL,
    priority             integer NOT NULL DEFAULT 100,
    max_error_rate_bps   integer NOT NULL DEFAULT 500
                         CHECK (max_error_rate_bps BETWEEN 0 AND 10000),
    max_latency_ms       integer NOT NULL DEFAULT 5000 CHECK (max_latency_ms > 0),
    enabled              boolean NOT NULL DEFAULT true
);

CREATE TABLE payments (
    payment_id     uuid NOT NULL,
    created_at     timestamptz NOT NULL,
    payer_account  text NOT NULL,
    payee_address  text NOT NULL,
    merchant_id    text,
    amount         numeric(39, 0) NOT NULL CHECK (amount > 0),
    currency       text NOT NULL,
    status         text NOT NULL CHECK (status IN ('REQUESTED', 'REVIEW', 'SCORED', 'SUBMITTED',
                                                   'CONFIRMED', 'SETTLED', 'REJECTED', 'FAILED')),
    t_start        timestamptz NOT NULL,
    t_end          timestamptz,
    latency_ms     integer CHECK (latency_ms >= 0),
    fraud_score    integer CHECK (fraud_score BETWEEN 0 AND 1000),
    error_code     text,
    tx_hash        text,
    batch_id       bigint,
    sequence       bigint,
    block_number   bigint,
    PRIMARY KEY (payment_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE payments_default PARTITION OF payments DEFAULT;
CREATE INDEX payments_payer_time ON payments (payer_account, created_at DESC);
CREATE INDEX payments_status_time ON payments (status, created_at DESC);
CREATE INDEX payments_merchant_time ON payments (merchant_id, created_at DESC);
CREATE INDEX payments_tx ON payments (tx_hash);

-- Monthly partitions, created ahead of time (the migration, then the sink).
CREATE FUNCTION paystream_ensure_payment_partitions(months_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', now())::date;
    created integer := 0;
    part text;
BEGIN
    FOR i IN 0..months_ahead LOOP
        part := format('payments_%s', to_char(month_start + make_interval(months => i), 'YYYY_MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF payments FOR VALUES FROM (%L) TO (%L)',
                           part, month_start + make_interval(months => i),
                           month_start + make_interval(months => i + 1));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;
SELECT paystream_ensure_payment_partitions(2);

CREATE TABLE fraud_checks (
    payment_id         uuid PRIMARY KEY,
    checked_at         timestamptz NOT NULL,
    score              integer NOT NULL CHECK (score BETWEEN 0 AND 1000),
    decision           text NOT NULL CHECK (decision IN ('APPROVE', 'REVIEW', 'BLOCK')),
    rules_triggered    jsonb NOT NULL DEFAULT '[]',
    check_duration_ms  double precision NOT NULL CHECK (check_duration_ms >= 0)
);
CREATE INDEX fraud_checks_rules ON fraud_checks USING gin (rules_triggered);

CREATE TABLE transaction_metrics (
    bucket_start    timestamptz PRIMARY KEY,   -- one row per minute
    n_total         integer NOT NULL,
    n_success       integer NOT NULL,
    n_failed        integer NOT NULL,
    tps             double precision NOT NULL,
    avg_latency_ms  double precision,
    p95_latency_ms  double precision,
    p99_latency_ms  double precision,
    success_rate    double precision,
    total_amount    numeric(39, 0) NOT NULL DEFAULT 0
);

-- Double-entry: every payment writes entries that sum to zero; never updated.
CREATE TABLE ledger_entries (
    entry_id    bigserial PRIMARY KEY,
    event_id    uuid NOT NULL,
    payment_id  uuid,
    account     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('payer', 'payee', 'fee', 'deposit', 'treasury')),
    amount      numeric(39, 0) NOT NULL CHECK (amount <> 0),
    currency    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_account_time ON ledger_entries (account, created_at);
CREATE INDEX ledger_payment ON ledger_entries (payment_id);

-- The idempotency record: written in the same transaction as the effect.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE reconciliation_log (
    id          bigserial PRIMARY KEY,
    run_at      timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    payment_id  uuid,
    detail      jsonb NOT NULL DEFAULT '{}'
);

-- Append-only, hash-chained: hash = sha256(prev_hash || canonical content).
CREATE TABLE audit_log (
    seq        bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    entity     text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}',
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL UNIQUE
);

CREATE FUNCTION paystream_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION paystream_forbid_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION paystream_forbid_change();
"""

DOWNGRADE = r"""
DROP TABLE audit_log;
DROP TABLE reconciliation_log;
DROP TABLE processed_events;
DROP TABLE ledger_entries;
DROP FUNCTION paystream_forbid_change();
DROP TABLE transaction_metrics;
DROP TABLE fraud_checks;
DROP FUNCTION paystream_ensure_payment_partitions(integer);
DROP TABLE payments;
DROP TABLE payment_providers;
DROP TABLE merchants;
DROP TABLE payment_methods;
DROP TABLE users;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)

"""The one frozen configuration object of paystream.

Every key is read from the environment with the prefix ``PAYSTREAM_`` (or from a
``.env`` file in the working directory); ``.env.example`` lists them all. Units
are part of the names; secrets are ``SecretStr`` and never printed. Build it once
(``Settings()``) and pass it explicitly: nothing reads the environment elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The well-known development mnemonic of anvil/hardhat: its keys hold test ether
# on a local chain only, where every role's key is derived from it when none is set.
LOCAL_MNEMONIC = "test test test test test test test test test test test junk"
_LOCAL_PG_PASSWORD = "paystream-local"  # noqa: S105 - the public local default, refused elsewhere
_LOCAL_SIGNER_TOKEN = "paystream-local-signer"  # noqa: S105 - likewise
_LOCAL_OPS_TOKEN = "paystream-local-ops"  # noqa: S105 - likewise
LOCAL_CHAIN_ID = 31337  # anvil's: the only chain the public defaults may be used on
# The fewest confirmations (the block holding the event is the first) a chain
# may run with: its reorgs are known to reach that deep. Another chain id than
# the local one and these: DEFAULT_CONFIRMATIONS. See docs/chain.md.
CONFIRMATIONS_BY_CHAIN: dict[int, int] = {
    1: 12,  # Ethereum: finality (two epochs) is 64 to 95 blocks
    11155111: 12,  # Sepolia
    17000: 12,  # Holesky
    137: 64,  # Polygon PoS: reorgs dozens of blocks deep happened before milestones (2023)
    10: 10,  # OP Mainnet: sequencer blocks, final once the batch is on L1
    8453: 10,  # Base (as OP Mainnet)
    42161: 10,  # Arbitrum One (as OP Mainnet)
}
DEFAULT_CONFIRMATIONS = 12


class Settings(BaseSettings):
    """Configuration of the engine and of its local stack."""

    model_config = SettingsConfigDict(
        env_prefix="PAYSTREAM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a refused value may be a secret
    )

    # Where the local stack keeps its data, logs, pid files and downloads.
    state_dir: Path = PROJECT_ROOT / ".state"
    host: str = "127.0.0.1"

    # Kafka (single KRaft node locally).
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    kafka_heap_mb: int = Field(default=512, ge=128)
    kafka_partitions: int = Field(default=8, ge=1)

    # PostgreSQL.
    pg_port: int = Field(default=55432, ge=1, le=65535)
    pg_user: str = "paystream"
    pg_password: SecretStr = SecretStr(_LOCAL_PG_PASSWORD)
    pg_database: str = "paystream"
    pg_pool_min_size: int = Field(default=1, ge=0)
    pg_pool_max_size: int = Field(default=8, ge=1)

    # Redis.
    redis_port: int = Field(default=56379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0)

    # EVM node (anvil locally).
    anvil_port: int = Field(default=18545, ge=1, le=65535)
    anvil_block_time_s: float = Field(default=1.0, ge=0)
    chain_id: int = Field(default=LOCAL_CHAIN_ID, ge=1)
    # Keys, one per role (services/chain/keys.py). Each process is given only
    # its own: a worker the operator key, `paystream signer` the signers'
    # mnemonic, admin commands the admin key, the on-call the pauser key. Unset,
    # a key is derived from the mnemonic, which defaults to anvil's public one
    # on the local chain only.
    chain_mnemonic: SecretStr | None = None
    chain_operator_key: SecretStr | None = None
    chain_admin_key: SecretStr | None = None
    chain_pauser_key: SecretStr | None = None
    chain_rpc_timeout_s: float = Field(default=10.0, gt=0)
    # A remote node's JSON-RPC URL; unset means the local anvil (host + anvil_port).
    # A secret (providers put API keys in it): only its scheme and host are shown.
    chain_rpc_endpoint: SecretStr | None = None
    # Transactions: EIP-1559 tip and cap, receipt polling, replacement of stuck ones.
    chain_priority_fee_wei: int = Field(default=1_000_000_000, ge=0)
    chain_max_fee_wei: int = Field(default=500_000_000_000, gt=0)
    chain_receipt_timeout_s: float = Field(default=120.0, gt=0)
    chain_receipt_poll_s: float = Field(default=0.1, gt=0)
    chain_replace_after_s: float = Field(default=12.0, gt=0)
    chain_max_replacements: int = Field(default=5, ge=0)
    # A transaction not mined after this long is cancelled (an empty one takes
    # its nonce); the payments it carried then fail with proof they are unpaid.
    chain_cancel_after_s: float = Field(default=3_600.0, gt=0)
    chain_fee_bump_bps: int = Field(default=1_250, ge=1_250)
    chain_gas_margin_bps: int = Field(default=2_000, ge=0)
    # Settlement approvals: M of N signers for batches above the threshold.
    chain_signer_count: int = Field(default=3, ge=1, le=8)
    chain_required_approvals: int = Field(default=2, ge=1)
    chain_approval_threshold: int = Field(default=1_000_000_000_000, ge=0)  # token base units
    chain_approval_ttl_s: int = Field(default=300, gt=0)
    # The contract's rolling daily cap on all settlement (token base units; a
    # token bucket refilled at this much per day, see PaymentSettlement.sol).
    chain_daily_cap: int = Field(default=100_000_000_000_000, gt=0, lt=2**96)

    # The approval signer (`paystream signer`): a process of its own, on this
    # host, holding the approval keys and enforcing its policy file.
    signer_port: int = Field(default=6070, ge=1, le=65535)
    signer_token: SecretStr = SecretStr(_LOCAL_SIGNER_TOKEN)  # workers send it as a bearer token
    signer_mnemonic: SecretStr | None = None  # unset: the chain mnemonic's keys 2..
    signer_policy_file: Path = PROJECT_ROOT / "deploy" / "local" / "signer-policy.json"
    signer_timeout_s: float = Field(default=5.0, gt=0)

    # Payments: tokens by symbol with their decimals, and the per-payment limit.
    # The token the contract pays in: {symbol: decimals}, exactly one (a worker
    # checks it against the deployed token before it starts).
    currencies: dict[str, int] = {"PTUSD": 6}
    max_payment_amount: int = Field(default=1_000_000_000_000, gt=0)  # minor units
    # A request whose requested_at is further than this from the engine's clock
    # (either way) is refused (REQUESTED_AT_OUT_OF_WINDOW): a wrong clock or a
    # stale request must not set latencies, partitions or review expiries.
    requested_at_window_s: int = Field(default=24 * 3600, gt=0)
    # A terminal payment leaves the workers' tables this long after it was
    # requested (a replayed or retried request within it gets the same records
    # again); its id is remembered, in a few bytes, for payment_id_memory_s, so
    # a request reusing it later is still answered PAYMENT_ID_CONFLICT.
    payment_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    payment_id_memory_s: int = Field(default=30 * 24 * 3600, gt=0)

    # Fraud rules (amounts in minor units).
    fraud_review_amount: int = Field(default=10_000_000_000, gt=0)
    fraud_block_amount: int = Field(default=500_000_000_000, gt=0)
    fraud_velocity_window_s: int = Field(default=60, gt=0)
    fraud_velocity_max_count: int = Field(default=120, gt=0)
    fraud_velocity_max_amount: int = Field(default=100_000_000_000, gt=0)
    fraud_blocklist: frozenset[str] = frozenset()
    # Payees that can never be paid (e.g. addresses the token refuses to credit):
    # PAYEE_NOT_PAYABLE before any hold, so one cannot revert a whole batch.
    payee_denylist: frozenset[str] = frozenset()
    # A payment held for review that no operator decides on is denied (and its
    # hold released) this long after it was held: REVIEW_EXPIRED.
    review_expiry_s: int = Field(default=24 * 3600, gt=0)
    merchant_refresh_s: float = Field(default=30.0, gt=0)  # workers reload the merchants

    # Stream pipeline.
    app_id: str = "paystream"
    topic_prefix: str = ""  # e.g. "staging." (tests use a fresh prefix per run)
    batch_max_payments: int = Field(default=200, ge=1, le=1024)
    batch_wait_ms: int = Field(default=100, ge=1)
    batch_timeout_s: float = Field(default=30.0, gt=0)
    settle_concurrency: int = Field(default=64, ge=1)  # batches in flight per worker
    settle_inflight_max: int = Field(default=8, ge=1)  # transactions before due batches wait
    # The chain's block interval when it is fixed (None: the local anvil's
    # --block-time when the node is the local one, else 0: not fixed). With
    # it, batches go together in the last settle_block_lead_ms before the next
    # block is due (streams/stages/settlement/blocks.py).
    chain_block_time_s: float | None = Field(default=None, ge=0)
    settle_block_lead_ms: int = Field(default=300, ge=1)
    faust_stream_buffer_maxsize: int = Field(default=4096, ge=1)  # events per agent
    faust_producer_linger_ms: int = Field(default=5, ge=0)
    faust_commit_every: int = Field(default=10000, ge=1)  # events between offset commits
    # The worker's fetches wait for this many bytes or this long, whichever
    # comes first (Faust's own consumer asks for 1 byte: streams/transport.py).
    # Its consumer's other requests (the table recovery's offsets, a seek) wait
    # behind a fetch the broker holds: 100 ms, not Faust's 1,500 (ADR 0018).
    faust_fetch_min_bytes: int = Field(default=1, ge=1)
    faust_fetch_max_wait_ms: int = Field(default=100, ge=0)
    faust_uvloop: bool = True  # the worker's event loop on uvloop (asyncio's own when off)
    faust_producer_max_batch_size: int = Field(default=16384, ge=1024)  # bytes per partition batch
    settle_retries_max: int = Field(default=5, ge=0)
    settle_backoff_ms: int = Field(default=200, ge=1)
    confirmations_min: int = Field(default=1, ge=1)
    # Blocks (the settlement's own counts) after which payments.finalized is
    # published; at most the 64 blocks the listener remembers.
    finality_depth: int = Field(default=3, ge=1, le=64)
    # Run below the chain's minimum confirmations (CONFIRMATIONS_BY_CHAIN) anyway.
    confirmations_override: bool = False
    listener_poll_ms: int = Field(default=100, ge=10)
    listener_max_blocks: int = Field(default=2_000, ge=1)
    listener_start_block: int = Field(default=0, ge=0)
    # Deposits each account's balance remembers; older ones are read from the
    # ledger when the chain shows them again (streams/deposits.py).
    deposit_memory: int = Field(default=256, ge=1, le=4096)
    # A partition with waiting records none of which reached its idle agent for
    # this long stops the worker (exit 72) for a restart (streams/watchdog.py).
    partition_stall_s: float = Field(default=60.0, gt=0)
    dlq_window: int = Field(default=200, ge=10)
    dlq_max_ratio: float = Field(default=0.9, gt=0, le=1)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, gt=0)
    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    # The ledger sink's /metrics (with every engine group's consumer lag).
    sink_metrics_port: int = Field(default=6068, ge=1, le=65535)
    lag_interval_s: float = Field(default=5.0, gt=0)  # between lag measurements
    # The merchant gateway (`paystream gateway`): its HTTP port; each API key's
    # rate limit unless the key has its own (GCRA in Redis: `burst` at once,
    # then `rate_per_s`); and payments are refused (429) while the worker reads
    # payments.requested more than `admission_lag_max_s` behind.
    gateway_port: int = Field(default=18080, ge=1, le=65535)
    gateway_rate_per_s: float = Field(default=100.0, gt=0)
    gateway_burst: int = Field(default=200, ge=1)
    gateway_workers: int = Field(default=1, ge=1)  # uvicorn worker processes on one port
    admission_lag_max_s: float = Field(default=10.0, gt=0)
    # The gateway's ops page (/ops): the operators' bearer token (the local
    # default is public and refused off the local chain), and where it reads
    # Prometheus and Alertmanager (unset: the local ones below).
    ops_token: SecretStr = SecretStr(_LOCAL_OPS_TOKEN)
    ops_prometheus_url: str | None = None
    ops_alertmanager_url: str | None = None
    # The local Prometheus and Alertmanager (devtools/stack/monitoring.py).
    prometheus_port: int = Field(default=59090, ge=1, le=65535)
    alertmanager_port: int = Field(default=59093, ge=1, le=65535)
    prometheus_scrape_s: float = Field(default=5.0, gt=0)  # scrape and rule evaluation
    # Alert thresholds, rendered into deploy/prometheus/rules.yml.in.
    alert_lag_s: float = Field(default=30.0, gt=0)  # oldest unread record older than this
    alert_lag_for_s: float = Field(default=30.0, ge=0)  # ... for this long
    alert_settle_p99_s: float = Field(default=2.0, gt=0)  # requested -> settled, p99 over 5 min
    # The lower Wilson 95 % bound of the success rate over 5 min, below this...
    alert_success_rate_min: float = Field(default=0.995, gt=0, lt=1)
    # ... with at least this many outcomes in the 5 min (fewer cannot show 99.5 %).
    alert_success_min_count: int = Field(default=1000, ge=1)
    alert_fraud_p99_s: float = Field(default=0.05, gt=0)  # fraud check p99 over 5 min
    alert_head_stall_s: float = Field(default=30.0, gt=0)  # the chain's head has not advanced
    alert_hold_age_s: float = Field(default=3600.0, gt=0)  # a payment held SCORED or SUBMITTED

    # Timeouts of the local stack and of the adapters.
    stack_start_timeout_s: float = Field(default=120.0, gt=0)
    stack_stop_timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)

    # Tests: start services with testcontainers instead (needs a Docker engine).
    testcontainers: bool = False

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def pg_conninfo(self) -> str:
        """libpq connection string without the password (pass it separately)."""
        return (
            f"host={self.host} port={self.pg_port} dbname={self.pg_database} "
            f"user={self.pg_user} connect_timeout={int(self.connect_timeout_s)}"
        )

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/{self.redis_db}"

    @property
    def signer_url(self) -> str:
        return f"http://{self.host}:{self.signer_port}"

    @property
    def chain_rpc_url(self) -> str:
        """The node's URL, secret included: for connecting, never for printing."""
        if self.chain_rpc_endpoint is not None:
            return self.chain_rpc_endpoint.get_secret_value()
        return f"http://{self.host}:{self.anvil_port}"

    @property
    def block_time_s(self) -> float:
        """The chain's fixed block interval; 0 when it has none (or it is not known)."""
        if self.chain_block_time_s is not None:
            return self.chain_block_time_s
        return self.anvil_block_time_s if self.chain_rpc_endpoint is None else 0.0

    @property
    def chain_rpc_shown(self) -> str:
        """The node's URL as messages show it: scheme and host only."""
        parts = urlsplit(self.chain_rpc_url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"

    @field_validator("currencies")
    @classmethod
    def _one_token(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) != 1:
            raise ValueError(
                "the settlement contract pays in one token: PAYSTREAM_CURRENCIES names "
                'exactly its symbol and decimals, e.g. {"USDC": 6}'
            )
        return value

    @property
    def currency(self) -> tuple[str, int]:
        """The one token's symbol and decimals."""
        return next(iter(self.currencies.items()))

    @model_validator(mode="after")
    def _retention_outlasts_replays(self) -> Settings:
        """A payment's full state must outlast the window in which its request
        is accepted, and its id the input topic's retention (a replay of the
        topic reads nothing older)."""
        if self.payment_retention_s <= 2 * self.requested_at_window_s:
            raise ValueError(
                "PAYSTREAM_PAYMENT_RETENTION_S must be more than twice "
                "PAYSTREAM_REQUESTED_AT_WINDOW_S: a request accepted now must find its "
                "payment's state"
            )
        if self.payment_id_memory_s * 1000 <= self.topic_retention_ms:
            raise ValueError(
                "PAYSTREAM_PAYMENT_ID_MEMORY_S must be longer than the topics' retention "
                "(PAYSTREAM_TOPIC_RETENTION_MS): a replayed request must be recognised"
            )
        return self

    @model_validator(mode="after")
    def _no_public_secrets_on_a_real_chain(self) -> Settings:
        """anvil's mnemonic and the local database password are public: refused
        on any chain but the local one (``LOCAL_CHAIN_ID``)."""
        if self.chain_id == LOCAL_CHAIN_ID:
            return self
        public = [
            name
            for name, value, default in (
                ("PAYSTREAM_CHAIN_MNEMONIC", self.chain_mnemonic, LOCAL_MNEMONIC),
                ("PAYSTREAM_SIGNER_MNEMONIC", self.signer_mnemonic, LOCAL_MNEMONIC),
                ("PAYSTREAM_PG_PASSWORD", self.pg_password, _LOCAL_PG_PASSWORD),
                ("PAYSTREAM_SIGNER_TOKEN", self.signer_token, _LOCAL_SIGNER_TOKEN),
                ("PAYSTREAM_OPS_TOKEN", self.ops_token, _LOCAL_OPS_TOKEN),
            )
            if value is not None and value.get_secret_value() == default
        ]
        if public:
            raise ValueError(
                f"chain id {self.chain_id} is not the local chain ({LOCAL_CHAIN_ID}): "
                f"set {' and '.join(public)} (the defaults are public)"
            )
        return self

    @model_validator(mode="after")
    def _final_after_confirmed(self) -> Settings:
        if self.finality_depth < self.confirmations_min:
            raise ValueError(
                "PAYSTREAM_FINALITY_DEPTH must be at least PAYSTREAM_CONFIRMATIONS_MIN: "
                "a settlement is final only after it was settled"
            )
        return self

    @model_validator(mode="after")
    def _enough_confirmations(self) -> Settings:
        """Off the local chain, fewer confirmations than the chain's reorgs reach
        are refused unless explicitly overridden."""
        if self.chain_id == LOCAL_CHAIN_ID or self.confirmations_override:
            return self
        needed = CONFIRMATIONS_BY_CHAIN.get(self.chain_id, DEFAULT_CONFIRMATIONS)
        if self.confirmations_min < needed:
            raise ValueError(
                f"chain id {self.chain_id} needs PAYSTREAM_CONFIRMATIONS_MIN of at least "
                f"{needed} (it is {self.confirmations_min}); set "
                "PAYSTREAM_CONFIRMATIONS_OVERRIDE=true to run with fewer"
            )
        return self

    def topic(self, name: str) -> str:
        """The Kafka name of a pipeline topic (see schemas/topics.py)."""
        return self.topic_prefix + name

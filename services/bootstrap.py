"""The composition root: the only place that constructs adapters and clients.

Nothing here connects at import time; each factory returns an object built from
the Settings it is given, with every timeout set. Each process takes the bundle
it needs from here (``worker_ports`` for a stream worker, ``ledger_store`` on
``pg_pool`` for the sink, the Kafka configurations for every confluent-kafka
client) and is assembled in its own layer: the Faust app in ``streams/app.py``,
the commands in ``paystream/cli/``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import redis.asyncio as aioredis
from aiohttp import ClientSession, ClientTimeout, TCPConnector
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from web3 import AsyncHTTPProvider, AsyncWeb3

from services.cache.cursor import RedisCursorStore
from services.chain.approvals import SignerClient
from services.chain.client import Deployment, Web3ChainClient, decoder_for_contracts
from services.chain.deployment import (
    deploy,
    deployment_file,
    load_deployment,
    require_deployment,
)
from services.chain.keys import ChainKeys, optional_operator_key, worker_key
from services.chain.nonces import SharedLock
from services.chain.sender import TxSender
from services.errors import ConfigError
from services.identity import require_unused_sequences
from services.metrics.lag import GroupOffsets
from services.ports import LedgerStore, WorkerPorts
from services.settings import Settings
from services.store.claims import PostgresClaimStore, unfinished_claims
from services.store.errors import translated, unavailable
from services.store.locks import advisory_lock
from services.store.merchants import PostgresMerchants
from services.store.postgres import PostgresLedgerStore

# The send lock is held for one pending-nonce read and one send, each bounded by
# the RPC timeout; a worker waits for a few such holders before giving up.
SEND_LOCK_WAIT_RPCS = 6


def pg_pool(settings: Settings, autocommit: bool = False) -> AsyncConnectionPool:
    """An unopened psycopg 3 pool (``await pool.open()`` or ``async with``).
    With ``autocommit`` each statement is its own transaction (no BEGIN and
    COMMIT round trips around it); work of several statements then opens
    ``conn.transaction()``."""
    return AsyncConnectionPool(
        conninfo=settings.pg_conninfo,
        kwargs={"password": settings.pg_password.get_secret_value(), "autocommit": autocommit},
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        timeout=settings.connect_timeout_s,
        open=False,
        name="paystream",
    )


def pg_connection(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    """One autocommit connection for a command (close it with ``with``); a
    database that does not answer is ``StoreUnavailable``."""
    with translated(settings):
        return psycopg.connect(
            settings.pg_conninfo,
            password=settings.pg_password.get_secret_value(),
            autocommit=True,
        )


def ensure_partitions(settings: Settings, months: int) -> int:
    """Payment partitions for this month and the next ``months``; how many were created."""
    with translated(settings), pg_connection(settings) as conn:
        row = conn.execute("SELECT paystream_ensure_payment_partitions(%s)", (months,)).fetchone()
    return int(row[0]) if row else 0


def prepare_schema(settings: Settings) -> None:
    """Migrate, then make sure this month and the next two have partitions:
    what every process that keeps state in PostgreSQL does first."""
    from services.store.schema import upgrade

    upgrade(settings)
    ensure_partitions(settings, 2)


def redis_client(settings: Settings) -> aioredis.Redis:
    """An asyncio Redis client; connects lazily on the first command."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.connect_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        health_check_interval=30,
    )


def web3_client(settings: Settings) -> AsyncWeb3[Any]:
    """An AsyncWeb3 over HTTP JSON-RPC with a request timeout."""
    provider = AsyncHTTPProvider(
        settings.chain_rpc_url,
        request_kwargs={"timeout": settings.chain_rpc_timeout_s},
    )
    return AsyncWeb3(provider)


def kafka_producer_config(settings: Settings) -> dict[str, object]:
    """confluent-kafka producer settings: idempotent, acks from all replicas."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        # The same key -> partition mapping as Faust (aiokafka) and Kafka's Java clients.
        "partitioner": "murmur2_random",
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.connect_timeout_s * 6 * 1000),
    }


def kafka_admin(settings: Settings) -> AdminClient:
    """A Kafka admin client (topics). Its log level is 2: its own connection-refused
    lines would only repeat the error a caller raises when the broker does not answer."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 2})


def kafka_consumer_config(settings: Settings, group_id: str) -> dict[str, object]:
    """confluent-kafka consumer settings: manual commits, start at the beginning."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
    }


async def chain_client(
    settings: Settings, shared_lock: SharedLock | None = None, worker: bool = False
) -> Web3ChainClient:
    """The chain client for the deployed contracts (run `paystream chain deploy` first).

    Its HTTP connections are kept alive and pooled (web3's default session closes
    each connection after one request), and web3's validation middleware is off:
    it asks the node for the chain id before every call, and the client signs
    every transaction with ``settings.chain_id`` itself. A worker's client holds
    the operator key and no other (``worker_key``); a command's, the operator
    key if it has one.
    """
    w3 = web3_client(settings)
    timeout = ClientTimeout(total=settings.chain_rpc_timeout_s)
    connector = TCPConnector(limit=settings.settle_concurrency, keepalive_timeout=30)
    await w3.provider.cache_async_session(
        ClientSession(raise_for_status=True, connector=connector, timeout=timeout)
    )
    w3.middleware_onion.remove("validation")
    try:
        deployment = await require_deployment(w3, settings)
    except BaseException:
        await w3.provider.disconnect()
        raise
    return Web3ChainClient(
        w3,
        settings,
        worker_key(settings) if worker else optional_operator_key(settings),
        deployment,
        tx_sender(w3, settings, shared_lock),
        SignerClient(settings),
    )


def tx_sender(
    w3: AsyncWeb3[Any], settings: Settings, shared_lock: SharedLock | None = None
) -> TxSender:
    return TxSender(w3, settings, decoder_for_contracts(), shared_lock)


def ledger_store(pool: AsyncConnectionPool, settings: Settings) -> PostgresLedgerStore:
    """The PostgreSQL ledger on an (opened) pool; deposits are in the first token."""
    return PostgresLedgerStore(pool, settings.currency[0])


async def worker_ports(settings: Settings) -> WorkerPorts:
    """A stream worker's ports: the chain client (its sender shares one nonce
    lock per operator key with every other worker, in PostgreSQL), the claim
    store, the ledger (for deposits), and the listener's cursor store (a new deployment starts a new
    cursor). The pool lives as long as the worker."""
    pool = await open_pool(settings)
    lock = advisory_lock(
        pool, "paystream-sender", SEND_LOCK_WAIT_RPCS * settings.chain_rpc_timeout_s
    )
    client = await chain_client(settings, shared_lock=lock, worker=True)
    key = f"paystream:listener:{settings.app_id}:{client.deployment.settlement}"
    return WorkerPorts(
        chain=client,
        cursors=RedisCursorStore(redis_client(settings), key),
        claims=PostgresClaimStore(pool),
        merchants=PostgresMerchants(pool),
        ledger=ledger_store(pool, settings),
    )


async def deploy_guarded(settings: Settings, force: bool = False) -> tuple[Deployment, bool]:
    """Deploy the contracts unless recorded (returns them and whether they are
    new). A new contract replacing a recorded one starts with an empty record of
    paid sequence numbers and would pay again what the old one paid: refused
    while claimed payments have no outcome in PostgreSQL, unless ``force`` (for
    a chain whose state is gone)."""
    w3 = web3_client(settings)
    try:
        replacing = deployment_file(settings).exists() and (
            await load_deployment(w3, settings) is None
        )
        if replacing and not force:
            with translated(settings), pg_connection(settings) as conn:
                pending = unfinished_claims(conn)
            if pending:
                raise ConfigError(
                    f"{pending} payment(s) claimed a sequence number on the recorded contract "
                    f"({deployment_file(settings)}) and have no outcome yet; a new contract "
                    "would pay them again. Let them settle or fail first, or pass --force if "
                    "that chain's state is gone"
                )
        keys = ChainKeys.from_settings(settings)
        return await deploy(w3, settings, keys, tx_sender(w3, settings))
    finally:
        await w3.provider.disconnect()


async def preflight_worker(settings: Settings) -> frozenset[str]:
    """What a worker needs before Faust starts: the contracts, the migrated
    schema, and next sequence numbers that the contract has not paid. Returns
    the contracts' addresses (token, settlement): payees that can never be paid.
    The configured currency must be the deployed token's symbol and decimals."""
    pool = await open_pool(settings)
    try:
        client = await chain_client(settings, worker=True)
        try:
            await require_unused_sequences(
                PostgresClaimStore(pool), client, settings.kafka_partitions
            )
            token = await client.token_identity()
            if token != settings.currency:
                raise ConfigError(
                    f"the deployed token is {token[0]} with {token[1]} decimals, but "
                    f"PAYSTREAM_CURRENCIES says {settings.currency[0]} with "
                    f"{settings.currency[1]}: set it to the token the contract pays in"
                )
            deployment = client.deployment
            return frozenset({deployment.token, deployment.settlement})
        finally:
            await client.close()
    finally:
        await pool.close()


async def open_pool(settings: Settings, autocommit: bool = False) -> AsyncConnectionPool:
    """An opened pool, or ``StoreUnavailable`` naming the fix (one connection is
    tried first: a pool that cannot connect logs every attempt)."""
    try:
        probe = await psycopg.AsyncConnection.connect(
            settings.pg_conninfo, password=settings.pg_password.get_secret_value()
        )
    except psycopg.OperationalError as exc:
        raise unavailable(settings, exc) from exc
    await probe.close()
    pool = pg_pool(settings, autocommit)
    try:
        await pool.open(wait=True, timeout=settings.connect_timeout_s)
    except PoolTimeout as exc:
        await pool.close()
        raise unavailable(settings, exc) from exc
    return pool


@dataclass(frozen=True)
class SinkBundle:
    """What the ledger sink is handed: the store, and its Kafka consumer and producer."""

    store: LedgerStore
    consumer: Consumer
    producer: Producer  # dead letters


@asynccontextmanager
async def sink_bundle(settings: Settings, group_id: str) -> AsyncIterator[SinkBundle]:
    """The ledger sink's adapters; the pool is closed and the consumer left on exit."""
    consumer = Consumer(kafka_consumer_config(settings, group_id))
    try:
        async with pg_pool(settings) as pool:
            producer = Producer(kafka_producer_config(settings))
            yield SinkBundle(ledger_store(pool, settings), consumer, producer)
    finally:
        consumer.close()


@dataclass(frozen=True)
class ReconcileBundle:
    """What ``paystream reconcile`` reads: the chain, the database, and Kafka
    through consumers of groups of their own (nothing is committed)."""

    chain: Web3ChainClient
    pool: AsyncConnectionPool
    consumer: Callable[[], Consumer]


@asynccontextmanager
async def reconcile_bundle(settings: Settings) -> AsyncIterator[ReconcileBundle]:
    def consumer() -> Consumer:
        return Consumer(kafka_consumer_config(settings, f"reconcile-{uuid.uuid4().hex[:8]}"))

    client = await chain_client(settings)
    try:
        async with pg_pool(settings) as pool:
            yield ReconcileBundle(client, pool, consumer)
    finally:
        await client.close()


def group_offsets_reader(
    settings: Settings,
) -> Callable[[list[tuple[str, int]]], Awaitable[dict[tuple[str, int], tuple[int, int]]]]:
    """The worker group's committed and end offsets on Kafka, read in a thread
    with their own client (the partition watchdog's view of each partition)."""
    offsets = GroupOffsets(
        kafka_consumer_config(settings, settings.app_id), settings.connect_timeout_s * 2
    )

    async def read(partitions: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        return await asyncio.to_thread(offsets.read, partitions)

    return read

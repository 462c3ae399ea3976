"""What the invariant checker reads, from the real sources only: the pipeline's
topics (requests as producers sent them, outcomes as consumers see them), the
chain (the token's ``Transfer`` logs out of the settlement contract, its
settlement and deposit events, the payees' token balances), the PostgreSQL
ledger, and ``paystream reconcile --json`` run as its own process.

Nothing here trusts the engine's memory or the test's own bookkeeping: what the
scenario sent is read back from ``payments.requested``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from eth_typing import HexStr
from eth_utils.crypto import keccak

from devtools.harness.process import CLI
from schemas.onchain import DepositEvent, SettledEvent
from schemas.topics import (
    CHAIN_EVENTS,
    FRAUD_SCORED,
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_REQUESTED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from services.bootstrap import chain_client, kafka_consumer_config
from services.chain import rpc
from services.chain.events import TRANSFER_TOPIC
from services.errors import InvariantViolation
from services.settings import Settings
from streams.packing import unpack
from streams.tables import changelog_topic

READ_TIMEOUT_S = 60.0
RECONCILE_TIMEOUT_S = 180.0
WITHDRAWN_TOPIC = keccak(text="Withdrawn(address,uint256)")  # the admin moving treasury funds
# The alerts and chain.events are no invariant's source: they explain a violation.
CHECKED_TOPICS = (
    CHAIN_EVENTS,
    PAYMENTS_REQUESTED,
    FRAUD_SCORED,
    PAYMENTS_SETTLED,
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    RECONCILIATION_ALERTS,
)


@dataclass(frozen=True)
class Record:
    """One record of a topic, decoded (``value`` is None when it is not JSON)."""

    topic: str  # the base name (schemas/topics.py)
    partition: int
    offset: int
    key: str | None
    value: Any


@dataclass
class TopicFacts:
    """The records of the checked topics, by base topic name."""

    records: dict[str, list[Record]] = field(default_factory=dict)

    def of(self, topic: str) -> list[Record]:
        return self.records.get(topic, [])

    def merged(self, later: TopicFacts) -> TopicFacts:
        """These records followed by ``later``'s (topics deleted and re-created)."""
        names = set(self.records) | set(later.records)
        return TopicFacts({t: [*self.of(t), *later.of(t)] for t in names})


@dataclass(frozen=True)
class Transfer:
    """A token ``Transfer`` out of the settlement contract (a payout)."""

    payee: str
    amount: int
    tx_hash: str
    log_index: int


@dataclass
class ChainFacts:
    transfers: list[Transfer]
    settled: list[SettledEvent]
    deposits: list[DepositEvent]
    balances: dict[str, int]  # payee -> token balance
    head: int
    fee_recipient: str = ""  # lower case
    fees_held: int = 0  # the fee recipient's token balance


@dataclass
class ReconcileFacts:
    returncode: int
    report: dict[str, Any] | None
    output: str  # stderr, and stdout when it is not a report


@dataclass
class Facts:
    topics: TopicFacts
    chain: ChainFacts
    ledger: dict[str, int]  # account -> sum of its ledger entries
    reconcile: ReconcileFacts
    claims: dict[int, str] = field(default_factory=dict)  # sequence -> payment id (claimed)


def read_topic(settings: Settings, base: str, name: str | None = None) -> list[Record]:
    """Every record of a pipeline topic (or of the topic ``name``, e.g. a
    table's changelog), from its start to its current end."""
    topic = name or settings.topic(base)
    consumer = Consumer(kafka_consumer_config(settings, f"faults-{uuid.uuid4().hex[:8]}"))
    try:
        listed = consumer.list_topics(topic, timeout=30).topics.get(topic)
        partitions = list(listed.partitions) if listed is not None and not listed.error else []
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            for p in partitions
        }
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        out: list[Record] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                part, offset = int(msg.partition() or 0), int(msg.offset() or 0)
                out.append(Record(base, part, offset, _text(msg.key()), _json(msg.value())))
                if offset + 1 >= ends[part][1]:
                    todo.discard(part)
        if todo:
            raise KafkaException(f"{topic}: partitions {sorted(todo)} not read to their end")
        return out
    finally:
        consumer.close()


def chain_events(records: list[Record]) -> list[dict[str, Any]]:
    """The events of ``chain.events`` records, one by one: a record carries a
    poll's events of one partition (``events``), or, in the earlier shape, one."""
    out: list[dict[str, Any]] = []
    for r in records:
        if not isinstance(r.value, dict):
            continue
        nested = r.value.get("events")
        if isinstance(nested, list):
            out += [
                e["event"]
                for e in nested
                if isinstance(e, dict) and isinstance(e.get("event"), dict)
            ]
        else:
            out.append(r.value)
    return out


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _json(raw: bytes | None) -> Any:
    """A record's JSON data (a table's packed value unpacked), or None."""
    try:
        return json.loads(unpack(raw or b""))
    except (ValueError, InvariantViolation):
        return None


def stuck_states(settings: Settings, pids: set[str]) -> list[str]:
    """What the ``payments`` table last said about payments that got no
    outcome: counts by status, batched or not, and partition recorded or not."""
    latest: dict[str, dict[str, Any]] = {}
    name = changelog_topic(settings.app_id, "payments")
    for r in read_topic(settings, "payments-changelog", name):
        if isinstance(r.value, dict) and str(r.value.get("payment_id")) in pids:
            latest[str(r.value["payment_id"])] = r.value
    shapes = Counter(
        (
            v.get("status"),
            "batched" if v.get("batch_id") is not None else "not batched",
            "partition " + str(v.get("partition")),
        )
        for v in latest.values()
    )
    missing = len(pids) - len(latest)
    return [f"{n} {shape}" for shape, n in shapes.most_common()] + (
        [f"{missing} not in the payments table"] if missing else []
    )


def topic_facts(settings: Settings) -> TopicFacts:
    """Every checked topic, read side by side (one consumer each)."""
    with ThreadPoolExecutor(len(CHECKED_TOPICS), thread_name_prefix="topic") as pool:
        read = pool.map(lambda topic: read_topic(settings, topic), CHECKED_TOPICS)
        return TopicFacts(dict(zip(CHECKED_TOPICS, read, strict=True)))


async def chain_facts(settings: Settings, payees: set[str]) -> ChainFacts:
    """Payouts, settlements, deposits and the payees' balances, up to the head."""
    client = await chain_client(settings)
    try:
        head = await client.block_number()
        events = await client.events(0, head)
        treasury = HexStr("0x" + bytes(12).hex() + client.settlement.address[2:].lower())
        logs = await rpc.logs(
            client.w3,
            {
                "address": client.token.address,
                "topics": [HexStr("0x" + TRANSFER_TOPIC.hex()), treasury],
                "fromBlock": 0,
                "toBlock": head,
            },
        )
        withdrawals = await rpc.logs(
            client.w3,
            {
                "address": client.settlement.address,
                "topics": [HexStr("0x" + WITHDRAWN_TOPIC.hex())],
                "fromBlock": 0,
                "toBlock": head,
            },
        )
        balances = {p: await client.token_balance(p) for p in sorted(payees)}
        fee_recipient = str(await client.settlement.functions.feeRecipient().call()).lower()
        fees_held = await client.fees_collected()
    finally:
        await client.close()
    # The admin's withdrawals move treasury funds out too: they are no payouts.
    admin_moves = {bytes(g["transactionHash"]) for g in withdrawals}
    transfers = [
        Transfer(
            payee="0x" + bytes(g["topics"][2][12:]).hex(),
            amount=int.from_bytes(bytes(g["data"])[:32], "big"),
            tx_hash="0x" + bytes(g["transactionHash"]).hex(),
            log_index=int(g["logIndex"]),
        )
        for g in logs
        if bytes(g["transactionHash"]) not in admin_moves
    ]
    return ChainFacts(
        transfers=transfers,
        settled=[e for e in events if isinstance(e, SettledEvent)],
        deposits=[e for e in events if isinstance(e, DepositEvent)],
        balances=balances,
        head=head,
        fee_recipient=fee_recipient,
        fees_held=fees_held,
    )


def ledger_facts(settings: Settings) -> tuple[dict[str, int], dict[int, str]]:
    """The sum of the ledger entries of every account; the payment each
    sequence number was claimed for."""
    with psycopg.connect(
        settings.pg_conninfo, password=settings.pg_password.get_secret_value(), autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT account, sum(amount) FROM ledger_entries GROUP BY account"
        ).fetchall()
        claims = conn.execute("SELECT sequence, payment_id FROM payment_claims").fetchall()
    ledger = {str(account): int(total) for account, total in rows}
    return ledger, {int(sequence): str(pid) for sequence, pid in claims}


def run_reconcile(env: dict[str, str]) -> ReconcileFacts:
    """``paystream reconcile --json`` as a child process with the scenario's env."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", CLI, "reconcile", "--json"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=RECONCILE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return ReconcileFacts(-1, None, f"timed out after {exc.timeout:.0f} s")
    start = done.stdout.find("{")
    try:
        report = json.loads(done.stdout[start:]) if start >= 0 else None
    except ValueError:
        report = None
    output = done.stderr[-4000:] if report is not None else (done.stdout + done.stderr)[-4000:]
    return ReconcileFacts(done.returncode, report, output)


def gather(settings: Settings, env: dict[str, str], earlier: TopicFacts | None = None) -> Facts:
    """Every fact the checker needs (``earlier``: records of topics since deleted).
    The pipeline is at rest: ``paystream reconcile`` (the slowest source) runs
    while the topics, the ledger and the chain are read."""
    with ThreadPoolExecutor(1, thread_name_prefix="reconcile") as pool:
        reconcile = pool.submit(run_reconcile, env)
        topics = topic_facts(settings)
        if earlier is not None:
            topics = earlier.merged(topics)
        payees = {
            str(r.value["payee_address"])
            for r in topics.of(PAYMENTS_REQUESTED)
            if isinstance(r.value, dict) and isinstance(r.value.get("payee_address"), str)
        }
        ledger, claims = ledger_facts(settings)
        chain = asyncio.run(chain_facts(settings, payees))
        return Facts(
            topics=topics, chain=chain, ledger=ledger, reconcile=reconcile.result(), claims=claims
        )

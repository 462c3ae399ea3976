"""``paystream reconcile``: PostgreSQL, the Faust balances, the ``payments.settled``
topic and the chain's events must tell the same story."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.onchain import SettledEvent
from schemas.topics import PAYMENTS_SETTLED
from services.bootstrap import chain_client, kafka_consumer_config, pg_pool
from services.settings import Settings
from streams.tables import changelog_topic


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def mismatch(self, kind: str, **detail: Any) -> None:
        self.mismatches.append({"kind": kind, **detail})


def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of a topic, from the beginning to its current end."""
    consumer = Consumer(kafka_consumer_config(settings, f"reconcile-{uuid.uuid4().hex[:8]}"))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions) if topic in metadata.topics else []
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out: list[tuple[bytes | None, bytes]] = []
        while todo:
            for msg in consumer.consume(num_messages=5_000, timeout=2.0):
                if msg.error() is not None:
                    continue
                out.append((msg.key(), msg.value() or b""))
                if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0]:
                    todo.discard(msg.partition() or 0)
        return out
    finally:
        consumer.close()


def faust_balances(settings: Settings) -> dict[str, int]:
    """available + held per account, from the balances table's changelog."""
    latest: dict[str, Any] = {}
    for key, value in read_topic(settings, changelog_topic(settings.app_id, "balances")):
        if key is not None:
            latest[json.loads(key)] = json.loads(value) if value else None
    return {
        account: int(v["available"]) + sum(int(x) for x in v.get("holds", {}).values())
        for account, v in latest.items()
        if v
    }


async def reconcile(settings: Settings) -> Report:
    report = Report()
    settled = {}
    for _, value in read_topic(settings, settings.topic(PAYMENTS_SETTLED)):
        record = json.loads(value)
        settled[record["payment_id"]] = (int(record["sequence"]), int(record["amount"]))
    report.counts["payments.settled records"] = len(settled)

    client = await chain_client(settings)
    try:
        events = await client.events(0, await client.block_number())
    finally:
        await client.w3.provider.disconnect()
    on_chain = {e.payment.sequence: e.payment.amount for e in events if isinstance(e, SettledEvent)}
    report.counts["settlements on chain"] = len(on_chain)
    topic_by_sequence = {seq: amount for seq, amount in settled.values()}
    for seq in sorted(set(on_chain) ^ set(topic_by_sequence)):
        report.mismatch(
            "chain_vs_topic",
            sequence=seq,
            chain=on_chain.get(seq),
            topic=topic_by_sequence.get(seq),
        )

    async with pg_pool(settings) as pool, pool.connection() as conn:
        cur = await conn.execute(
            "SELECT payment_id::text, sequence, amount FROM payments WHERE status = 'SETTLED'"
        )
        in_pg = {pid: (int(seq), int(amount)) for pid, seq, amount in await cur.fetchall()}
        cur = await conn.execute("SELECT account, sum(amount) FROM ledger_entries GROUP BY account")
        ledger = {str(a): int(s) for a, s in await cur.fetchall()}
    report.counts["settled payments in PostgreSQL"] = len(in_pg)
    for pid in sorted(set(in_pg) ^ set(settled)):
        report.mismatch(
            "postgres_vs_topic", payment_id=pid, postgres=in_pg.get(pid), topic=settled.get(pid)
        )
    total = sum(ledger.values())
    report.counts["ledger total"] = total
    if total != 0:
        report.mismatch("ledger_not_balanced", total=total)

    balances = faust_balances(settings)
    report.counts["accounts in the balances table"] = len(balances)
    for account, faust in sorted(balances.items()):
        if ledger.get(account, 0) != faust:
            report.mismatch("balance", account=account, faust=faust, ledger=ledger.get(account, 0))
    return report

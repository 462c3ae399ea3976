"""``paystream reconcile``: PostgreSQL, the Faust balances, the ``payments.settled``
topic and the chain's events must tell the same story.

It is handed its sources by ``services.bootstrap.reconcile_bundle``. PostgreSQL
is read first: a database without the schema stops it at once with the command
to run (``paystream db migrate``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas.onchain import SettledEvent
from schemas.topics import PAYMENTS_SETTLED
from services.bootstrap import ReconcileBundle
from services.errors import BrokerUnavailable
from services.settings import Settings
from services.store.errors import translated
from streams.state import Balance
from streams.tables import changelog_topic

KAFKA_TIMEOUT_S = 10.0


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def mismatch(self, kind: str, **detail: Any) -> None:
        self.mismatches.append({"kind": kind, **detail})


def read_topic(
    new_consumer: Callable[[], Consumer], settings: Settings, topic: str
) -> list[tuple[bytes | None, bytes]]:
    """Every record of a topic, from the beginning to its current end (none if
    the topic does not exist: the engine never ran with this app id)."""
    consumer = new_consumer()
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_S)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"Kafka at {settings.kafka_bootstrap} does not answer ({exc}): "
                "start the stack with `paystream stack up`"
            ) from exc
        partitions = list(metadata.topics[topic].partitions) if topic in metadata.topics else []
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=KAFKA_TIMEOUT_S)[1]
            for p in partitions
        }
        return _read_to(consumer, topic, ends)
    finally:
        consumer.close()


def _read_to(
    consumer: Consumer, topic: str, ends: dict[int, int]
) -> list[tuple[bytes | None, bytes]]:
    todo = {p for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
    out: list[tuple[bytes | None, bytes]] = []
    while todo:
        for msg in consumer.consume(num_messages=5_000, timeout=2.0):
            if msg.error() is not None:
                continue  # a consumer event (end of partition), not a record
            out.append((msg.key(), msg.value() or b""))
            if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0]:
                todo.discard(msg.partition() or 0)
    return out


def faust_balances(bundle: ReconcileBundle, settings: Settings) -> dict[str, int]:
    """What the ledger must hold per payer, from the balances table's changelog,
    decoded through the table's own value type."""
    latest: dict[str, bytes] = {}
    topic = changelog_topic(settings.app_id, "balances")
    for key, value in read_topic(bundle.consumer, settings, topic):
        if key is not None:
            latest[json.loads(key)] = value
    return {
        account: Balance.model_validate_json(value).on_ledger
        for account, value in latest.items()
        if value and value != b"null"
    }


async def _postgres(
    bundle: ReconcileBundle, settings: Settings
) -> tuple[dict[str, Any], dict[str, int]]:
    """Settled payments (id -> (sequence, amount)) and ledger sums per account."""
    with translated(settings):
        async with bundle.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT payment_id::text, sequence, amount FROM payments WHERE status = 'SETTLED'"
            )
            settled = {pid: (int(seq), int(amount)) for pid, seq, amount in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT account, sum(amount) FROM ledger_entries GROUP BY account"
            )
            ledger = {str(a): int(s) for a, s in await cur.fetchall()}
    return settled, ledger


async def reconcile(settings: Settings, bundle: ReconcileBundle) -> Report:
    report = Report()
    in_pg, ledger = await _postgres(bundle, settings)
    settled = {}
    for _, value in read_topic(bundle.consumer, settings, settings.topic(PAYMENTS_SETTLED)):
        record = json.loads(value)
        settled[record["payment_id"]] = (int(record["sequence"]), int(record["amount"]))
    report.counts["payments.settled records"] = len(settled)

    events = await bundle.chain.events(0, await bundle.chain.block_number())
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

    report.counts["settled payments in PostgreSQL"] = len(in_pg)
    for pid in sorted(set(in_pg) ^ set(settled)):
        report.mismatch(
            "postgres_vs_topic", payment_id=pid, postgres=in_pg.get(pid), topic=settled.get(pid)
        )
    total = sum(ledger.values())
    report.counts["ledger total"] = total
    if total != 0:
        report.mismatch("ledger_not_balanced", total=total)

    balances = faust_balances(bundle, settings)
    report.counts["accounts in the balances table"] = len(balances)
    for account, faust in sorted(balances.items()):
        if ledger.get(account, 0) != faust:
            report.mismatch("balance", account=account, faust=faust, ledger=ledger.get(account, 0))
    return report

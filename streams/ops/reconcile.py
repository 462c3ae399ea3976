"""``paystream reconcile``: PostgreSQL, the Faust balances, the ``payments.settled``
topic and the chain's events must tell the same story: every settlement with
the same amount and fee, the fees the chain paid to the fee recipient equal to
the ledger's fee account, and the treasury holding at least what the ledger
owes the payers, and every account's deposits in the ledger equal to its
deposits on the chain. A settlement a reorg undid (``payments.reorged``) counts
only once settled again. A payment the chain paid otherwise than requested (a MISMATCH)
counts with what the chain paid once an operator resolved it (``paystream
mismatches``); until then it is reported here.

It is handed its sources by ``services.bootstrap.reconcile_bundle``. PostgreSQL
is read first: a database without the schema stops it at once with the command
to run (``paystream db migrate``).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas.onchain import DepositEvent, SettledEvent
from schemas.topics import (
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_SETTLED,
)
from services.bootstrap import ReconcileBundle
from services.errors import BrokerUnavailable
from services.settings import Settings
from services.store.errors import translated
from services.store.ledger import FEE_ACCOUNT, is_payer_account
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


Records = list[tuple[bytes | None, bytes]]  # (key, value) of one topic, in order per partition


async def read_topics(
    new_consumer: Callable[[], Consumer], settings: Settings, topics: list[str]
) -> dict[str, Records]:
    """Every record of each of ``topics`` (``read_topic``), read side by side."""
    read = await asyncio.gather(
        *(asyncio.to_thread(read_topic, new_consumer, settings, t) for t in topics)
    )
    return dict(zip(topics, read, strict=True))


def faust_balances(changelog: Records) -> dict[str, Balance]:
    """Each payer's balance (what the ledger must hold for it is its
    ``on_ledger``), from the balances table's changelog, decoded through the
    table's own value type."""
    latest: dict[str, bytes] = {}
    for key, value in changelog:
        if key is not None:
            latest[json.loads(key)] = value
    return {
        account: Balance.model_validate_json(value)
        for account, value in latest.items()
        if value and value != b"null"
    }


async def _postgres(
    bundle: ReconcileBundle, settings: Settings
) -> tuple[dict[str, Any], dict[str, int], int]:
    """Settled payments (id -> (sequence, amount, fee)), ledger sums per account
    and how many settled payments are final."""
    with translated(settings):
        async with bundle.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT payment_id::text, sequence, amount, fee FROM payments"
                " WHERE status = 'SETTLED'"
            )
            settled = {
                pid: (int(seq), int(amount), int(fee))
                for pid, seq, amount, fee in await cur.fetchall()
            }
            # A resolved MISMATCH: the ledger booked what the chain paid.
            cur = await conn.execute(
                "SELECT payment_id::text, detail FROM reconciliation_log WHERE kind = 'RESOLVED'"
            )
            for pid, detail in await cur.fetchall():
                chain = detail["chain"]
                settled[pid] = (int(chain["sequence"]), int(chain["amount"]), int(chain["fee"]))
            cur = await conn.execute(
                "SELECT account, sum(amount) FROM ledger_entries GROUP BY account"
            )
            ledger = {str(a): int(s) for a, s in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT count(*) FROM payments"
                " WHERE status = 'SETTLED' AND finalized_at IS NOT NULL"
            )
            row = await cur.fetchone()
    return settled, ledger, int(row[0]) if row else 0


@dataclass(frozen=True)
class Settled:
    sequence: int
    amount: int
    block: int
    fee: int = 0

    @property
    def paid(self) -> tuple[int, int]:
        return self.amount, self.fee


def compare_settlements(
    report: Report,
    on_chain: dict[int, Settled],
    in_pg: dict[str, tuple[int, int, int]],
    topic: dict[str, Settled],
) -> None:
    """The chain and PostgreSQL must agree on every settlement (sequence, amount
    and fee). The topic is a window (retention, or topics created again while
    the contract was kept): every record it holds must be on chain and in
    PostgreSQL, and every settlement mined since its oldest record must be in it."""
    report.counts["payments.settled records"] = len(topic)
    report.counts["settlements on chain"] = len(on_chain)
    report.counts["settled payments in PostgreSQL"] = len(in_pg)
    chain_amounts = {seq: s.paid for seq, s in on_chain.items()}
    pg_amounts = {seq: (amount, fee) for seq, amount, fee in in_pg.values()}
    for seq in sorted(set(chain_amounts) | set(pg_amounts)):
        if chain_amounts.get(seq) != pg_amounts.get(seq):
            report.mismatch(
                "chain_vs_postgres",
                sequence=seq,
                chain=chain_amounts.get(seq),
                postgres=pg_amounts.get(seq),
            )
    since = min((s.block for s in topic.values()), default=None)
    in_topic = {s.sequence: s.paid for s in topic.values()}
    before = [seq for seq, s in on_chain.items() if since is None or s.block < since]
    report.counts["settlements older than the topic's first record"] = len(before)
    for seq in sorted((set(chain_amounts) - set(before)) | set(in_topic)):
        if chain_amounts.get(seq) != in_topic.get(seq):
            report.mismatch(
                "chain_vs_topic",
                sequence=seq,
                chain=chain_amounts.get(seq),
                topic=in_topic.get(seq),
            )
    for pid, s in sorted(topic.items()):
        if in_pg.get(pid) != (s.sequence, s.amount, s.fee):
            report.mismatch(
                "postgres_vs_topic",
                payment_id=pid,
                postgres=in_pg.get(pid),
                topic=(s.sequence, s.amount, s.fee),
            )


def compare_fees_and_treasury(
    report: Report, fees_paid: int, ledger: dict[str, int], treasury: int
) -> None:
    """The fees the chain paid out equal the ledger's fee account; the treasury
    holds at least what the ledger owes the payers (their accounts: neither a
    payee's address nor the platform's accounts)."""
    report.counts["fees paid on chain"] = fees_paid
    report.counts["fees in the ledger"] = ledger.get(FEE_ACCOUNT, 0)
    if fees_paid != ledger.get(FEE_ACCOUNT, 0):
        report.mismatch("fees", chain=fees_paid, ledger=ledger.get(FEE_ACCOUNT, 0))
    owed = sum(v for a, v in ledger.items() if is_payer_account(a))
    report.counts["owed to payers"] = owed
    report.counts["treasury on chain"] = treasury
    if treasury < owed:
        report.mismatch("treasury_insolvent", treasury=treasury, owed=owed)


def topic_settlements(records: dict[str, Records], settings: Settings) -> dict[str, Settled]:
    """What the outcome topics say the chain paid, by payment id: every
    ``payments.settled`` record, and the rejected MISMATCHes of
    ``payments.failed`` (a resolved MISMATCH counts with the chain's payout).
    ``records``: the topics' records, by topic name."""
    topic: dict[str, Settled] = {}
    reorgs: dict[str, int] = {}  # per payment, its settlements a reorg undid
    for name in (PAYMENTS_SETTLED, PAYMENTS_FAILED):
        for _, value in records[settings.topic(name)]:
            record = json.loads(value)
            paid = (record.get("resolution") or {}).get("chain") or record
            if name == PAYMENTS_FAILED and paid is record:
                continue
            pid = record["payment_id"]
            if int(record.get("reorgs") or 0) < reorgs.get(pid, 0):
                continue  # an older settlement than one already read
            reorgs[pid] = int(record.get("reorgs") or 0)
            topic[pid] = Settled(
                int(paid["sequence"]),
                int(paid["amount"]),
                int(paid["block_number"]),
                int(paid.get("fee") or 0),
            )
    for _, value in records[settings.topic(PAYMENTS_REORGED)]:
        record = json.loads(value)
        if int(record["reorgs"]) > reorgs.get(record["payment_id"], -1):
            topic.pop(record["payment_id"], None)  # undone, and not settled since
    return topic


async def _ledger_deposits(
    bundle: ReconcileBundle, settings: Settings
) -> tuple[dict[str, int], int]:
    """Per account, its deposits in the ledger net of reversals; and how many
    reversals the ledger holds."""
    with translated(settings):
        async with bundle.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account, sum(amount), count(*) FILTER (WHERE amount < 0)"
                " FROM ledger_entries WHERE kind = 'deposit' GROUP BY account"
            )
            rows = await cur.fetchall()
    return {str(a): int(net) for a, net, _ in rows}, sum(int(n) for _, _, n in rows)


def compare_deposits(
    report: Report, on_chain: list[DepositEvent], ledger: dict[str, int], reversals: int
) -> None:
    """Every account's deposits in the ledger (net of the reversals reorgs
    caused) equal its deposits on the canonical chain."""
    chain: dict[str, int] = defaultdict(int)
    for event in on_chain:
        chain[event.account] += event.amount
    report.counts["deposits on chain"] = len(on_chain)
    report.counts["deposits reversed by reorgs"] = reversals
    for account in sorted(set(chain) | set(ledger)):
        if chain.get(account, 0) != ledger.get(account, 0):
            report.mismatch(
                "deposits",
                account=account,
                chain=chain.get(account, 0),
                ledger=ledger.get(account, 0),
            )


async def reconcile(settings: Settings, bundle: ReconcileBundle) -> Report:
    report = Report()
    balances_changelog = changelog_topic(settings.app_id, "balances")
    names = [PAYMENTS_SETTLED, PAYMENTS_FAILED, PAYMENTS_REORGED, PAYMENTS_FINALIZED]
    topics = [settings.topic(n) for n in names] + [balances_changelog]
    records = await read_topics(bundle.consumer, settings, topics)
    in_pg, ledger, final_rows = await _postgres(bundle, settings)
    topic = topic_settlements(records, settings)
    events = await bundle.chain.events(0, await bundle.chain.block_number())
    on_chain = {
        e.payment.sequence: Settled(
            e.payment.sequence, e.payment.amount, e.at.block_number, e.payment.fee
        )
        for e in events
        if isinstance(e, SettledEvent)
    }
    compare_settlements(report, on_chain, in_pg, topic)
    deposits = [e for e in events if isinstance(e, DepositEvent)]
    compare_deposits(report, deposits, *await _ledger_deposits(bundle, settings))
    for name, count in (
        (PAYMENTS_REORGED, "settlements undone by reorgs"),
        (PAYMENTS_FINALIZED, "payments.finalized records"),
    ):
        events_of = records[settings.topic(name)]
        report.counts[count] = len({json.loads(v)["event_id"] for _, v in events_of})
    report.counts["final payments in PostgreSQL"] = final_rows
    total = sum(ledger.values())
    report.counts["ledger total"] = total
    if total != 0:
        report.mismatch("ledger_not_balanced", total=total)
    compare_fees_and_treasury(
        report, sum(s.fee for s in on_chain.values()), ledger, await bundle.chain.treasury_balance()
    )

    balances = faust_balances(records[balances_changelog])
    report.counts["accounts in the balances table"] = len(balances)
    # Payments in flight or held for review; none once every payment has its outcome.
    report.counts["holds in the balances table"] = sum(len(b.holds) for b in balances.values())
    report.counts["held in the balances table"] = sum(b.held for b in balances.values())
    for account, balance in sorted(balances.items()):
        faust = balance.on_ledger
        if ledger.get(account, 0) != faust:
            report.mismatch("balance", account=account, faust=faust, ledger=ledger.get(account, 0))
    return report

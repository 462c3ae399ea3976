"""How ``paystream reconcile`` compares the chain, PostgreSQL and the
``payments.settled`` topic (a window: retention, or topics created again), and
checks the fees and the treasury's solvency."""

from __future__ import annotations

from services.store.ledger import FEE_ACCOUNT, TREASURY_ACCOUNT
from streams.ops.reconcile import Report, Settled, compare_fees_and_treasury, compare_settlements


def _world(
    count: int, first_in_topic: int
) -> tuple[dict[int, Settled], dict[str, tuple[int, int, int]], dict[str, Settled]]:
    chain = {seq: Settled(seq, 100 + seq, block=seq, fee=seq % 3) for seq in range(1, count + 1)}
    pg = {f"p{seq}": (seq, s.amount, s.fee) for seq, s in chain.items()}
    topic = {f"p{seq}": s for seq, s in chain.items() if seq >= first_in_topic}
    return chain, pg, topic


def _kinds(report: Report) -> list[tuple[str, object]]:
    return [(m["kind"], m.get("sequence", m.get("payment_id"))) for m in report.mismatches]


def test_agreeing_sources_and_a_topic_that_starts_later_are_clean() -> None:
    report = Report()
    compare_settlements(report, *_world(10, first_in_topic=4))
    assert report.mismatches == []
    assert report.counts["settlements older than the topic's first record"] == 3


def test_what_the_chain_paid_must_be_in_postgres_and_in_the_topic_since_its_start() -> None:
    chain, pg, topic = _world(10, first_in_topic=4)
    del pg["p2"]  # older than the topic: PostgreSQL still must have it
    del topic["p7"]  # inside the topic's window: lost
    pg["p9"] = (9, 1, 0)  # another amount
    pg["p5"] = (5, 105, 0)  # another fee
    report = Report()
    compare_settlements(report, chain, pg, topic)
    assert _kinds(report) == [
        ("chain_vs_postgres", 2),
        ("chain_vs_postgres", 5),
        ("chain_vs_postgres", 9),
        ("chain_vs_topic", 7),
        ("postgres_vs_topic", "p5"),
        ("postgres_vs_topic", "p9"),
    ]


def test_a_topic_record_the_chain_never_paid_is_a_mismatch() -> None:
    chain, pg, topic = _world(3, first_in_topic=1)
    topic["ghost"] = Settled(99, 5, block=2)
    report = Report()
    compare_settlements(report, chain, pg, topic)
    assert _kinds(report) == [("chain_vs_topic", 99), ("postgres_vs_topic", "ghost")]


def test_fees_must_match_the_ledger_and_the_treasury_cover_the_payers() -> None:
    ledger = {"alice": 600, "bob": 400, "0xabc": 950, FEE_ACCOUNT: 50, TREASURY_ACCOUNT: -2_000}
    report = Report()
    compare_fees_and_treasury(report, fees_paid=50, ledger=ledger, treasury=1_000)
    assert report.mismatches == [] and report.counts["owed to payers"] == 1_000
    compare_fees_and_treasury(report, fees_paid=49, ledger=ledger, treasury=999)
    assert [m["kind"] for m in report.mismatches] == ["fees", "treasury_insolvent"]

"""The pipeline's topics deleted and created again while the contract is kept
(a topic reset, a lost broker; audit finding 9): payments made afterwards must
be paid, never skipped as "already paid" by a sequence number that an earlier
payment used."""

from __future__ import annotations

from devtools.harness.collect import Collector
from streams.ops.topics import create_topics, delete_topics
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import murmur2_partition
from tests.faults.sources import TopicFacts, topic_facts
from tests.faults.verdict import assert_invariants

pytestmark = MARKS


def _payers_on_every_partition(p: FaultPipeline, tag: str, per_partition: int) -> list[str]:
    """Payers chosen so that every partition carries some of the payments."""
    n = p.settings.kafka_partitions
    chosen: dict[int, list[str]] = {i: [] for i in range(n)}
    for name in p.payers(40 * n * per_partition, tag):
        slot = chosen[murmur2_partition(name, n)]
        if len(slot) < per_partition:
            slot.append(name)
    return [name for slot in chosen.values() for name in slot]


def _recreate_topics(p: FaultPipeline) -> TopicFacts:
    """Stop the processes, keep what the topics held, delete and create them
    again, start the processes; returns the records of the deleted topics."""
    p.collector.stop()
    for name in p.workers:
        p.supervisor.stop(name)
    p.supervisor.stop("sink")
    earlier = topic_facts(p.settings)
    p.since_block = int(p.node("eth_blockNumber"), 16) + 1
    deleted = delete_topics(p.settings, p.settings.topic_prefix)
    create_topics(p.settings)
    p.mark(f"deleted and created again {len(deleted)} topics; the contract is kept")
    p.collector = Collector(p.settings).start()
    p.supervisor.start("sink", ready_timeout_s=5)
    for name in p.workers:
        p.supervisor.start(name)
    return earlier


def test_topics_recreated_with_the_contract_kept(faults: Faults) -> None:
    p = faults.pipeline()
    p.start()
    before = _payers_on_every_partition(p, "before", 2)
    p.fund(before)
    count = scaled(400)
    ids = p.load(before, payees=40).publish(None, count=count).ids
    p.mark(f"published {len(ids)} payments")
    notes = p.rest(ids, timeout_s=120)
    if notes:  # not a finding of this scenario: the setup failed
        raise RuntimeError(f"the first payments did not come to rest: {notes}")
    earlier = _recreate_topics(p)
    after = _payers_on_every_partition(p, "after", 2)
    p.fund(after)
    more = p.load(after, payees=40).publish(None, count=count // 2).ids
    p.mark(f"published {len(more)} payments on the new topics")
    # Healthy, the new payments settle within seconds: 20 s without one means stuck.
    assert_invariants(p, more, timeout_s=90, earlier=earlier, stall_s=20)

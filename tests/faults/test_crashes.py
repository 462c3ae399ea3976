"""Workers SIGKILLed at random points while payments flow, with the documented
(murmur2) producer: nothing may be lost, duplicated or paid twice."""

from __future__ import annotations

import os
from pathlib import Path

from schemas.partitioning import partition_for
from schemas.topics import PAYMENTS_REQUESTED
from tests.faults.conftest import Faults
from tests.faults.plan import MARKS, scaled
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 60.0
INJECT = Path(__file__).parent / "inject"


def test_three_sigkills_during_the_payments(faults: Faults) -> None:
    """One worker killed three times (x scale) while the payments are published."""
    p = faults.pipeline()
    p.start(workers=1)
    payers = p.payers(20)
    p.fund(payers)
    count, kills = scaled(1_200), scaled(3)
    window_s = count / RATE_PER_S
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        for _ in range(kills):
            p.sleep(0.3 * window_s / kills, 1.2 * window_s / kills)
            p.supervisor.kill("worker-1")
            p.sleep(0.0, 2.0)
            p.supervisor.start("worker-1")
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=120 + count / 20)


def test_two_workers_one_killed(faults: Faults) -> None:
    """Two workers share the partitions; the leader (it runs the chain
    listener) is SIGKILLed mid-run and comes back later (x scale): its
    partitions and the listener move to the other worker."""
    p = faults.pipeline()
    p.start(workers=2)
    payers = p.payers(20)
    p.fund(payers)
    count, kills = scaled(600), scaled(1)
    window_s = count / RATE_PER_S
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        for _ in range(kills):
            p.sleep(0.05 * window_s / kills, 0.6 * window_s / kills)
            victim = p.leader() or p.rng.choice(p.workers)
            p.supervisor.kill(victim)
            p.sleep(3.0, 8.0)
            p.supervisor.start(victim)
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=120 + count / 20)


def test_a_partition_faust_stops_fetching(faults: Faults) -> None:
    """Two faults injected inside the worker (``tests/faults/inject/``):

    - at its first settlements, the worker is SIGKILLed after the chain
      listener's records are in Kafka and before its cursor moves past them
      (audit finding 3): the restarted worker emits them again and the
      reconciler recognises them;
    - Faust stops fetching one partition of ``payments.requested`` while
      payments flow (what faust-streaming issue #629 leaves behind after a
      rebalance): the watchdog gives the partition back to the fetcher and
      reads it again from its committed offset, without a restart, and the
      partition's payments get their outcomes."""
    p = faults.pipeline()
    payers = p.payers(20)
    # A partition some payer's requests go to (20 payers leave one of 8 empty in
    # about 7 % of seeds, and an empty partition never stalls).
    used = sorted({partition_for(a, p.settings.kafka_partitions) for a in payers})
    p.worker_env = {
        "PYTHONPATH": os.pathsep.join(filter(None, (str(INJECT), os.environ.get("PYTHONPATH")))),
        "PAYSTREAM_FAULT_UNFETCHED": f"{PAYMENTS_REQUESTED}:{p.rng.choice(used)}:15",
        "PAYSTREAM_FAULT_UNFETCHED_MARK": str(p.logs.parent / "unfetched"),
        "PAYSTREAM_FAULT_KILL_AT_CURSOR": "0",  # the funding's deposits are no settlements
        "PAYSTREAM_FAULT_KILL_AT_CURSOR_MARK": str(p.logs.parent / "killed-at-cursor"),
    }
    p.start(workers=1)
    p.fund(payers)
    count = scaled(500)  # 25 s of payments: 10 s of them after the fault
    with publishing(p.load(payers, payees=40), RATE_PER_S / 3, count) as sent:
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    assert (p.logs.parent / "unfetched").exists(), "the unfetched partition was never injected"
    assert (p.logs.parent / "killed-at-cursor").exists(), "the kill was never injected"
    assert p.supervisor.summary()["worker-1"]["crashes"] == [-9]
    log = (p.logs / "worker-1.log").read_text(errors="replace")
    assert "partition watchdog: reading" in log, "the stalled partition was never read again"


def test_a_worker_killed_while_its_table_changes_are_on_their_way(faults: Faults) -> None:
    """Table changes reach Kafka 4 s after their records were handled
    (``tests/faults/inject/``, fault 3), a few payments a second, and the
    worker is SIGKILLed: offsets committed past records whose table changes
    were still in the producer's buffer would lose those payments (their
    ``fraud.scored`` records are in Kafka, their ``payments`` entries are
    not, and the settlement agent ignores them). ADR 0017 commits only past
    records whose writes Kafka acknowledged."""
    p = faults.pipeline()
    p.worker_env = {
        "PYTHONPATH": os.pathsep.join(filter(None, (str(INJECT), os.environ.get("PYTHONPATH")))),
        "PAYSTREAM_FAULT_SLOW_CHANGELOG": "4",
    }
    p.start(workers=1)
    payers = p.payers(8)
    p.fund(payers)
    rate_per_s, count = 3.0, scaled(75)
    with publishing(p.load(payers, payees=20), rate_per_s, count) as sent:
        p.sleep(8.0, 0.6 * count / rate_per_s)
        p.supervisor.kill("worker-1")
        p.supervisor.start("worker-1")
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=120 + count / 2)
    log = (p.logs / "worker-1.log").read_text(errors="replace")
    assert "FAULT: changelog records leave the buffer" in log, "the delay was never injected"

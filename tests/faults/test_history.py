"""A restart with 100,000 terminal payments in history.

The ``payments`` table's changelog is seeded with 100,000 settled payments, as
workers would have left them: 1,000 requested 8 days ago (past the 7-day
``payment_retention_s``), the rest a day ago. A worker starts on that history,
payments flow, the worker is SIGKILLed and restarted on it, more payments
flow (published while it was down, and then once it has rebuilt its table
index). Every new payment must end as usual (the suite's invariants), the
history's expired payments must be leaving the table (retired, their ids kept
in the ``retired`` table), and a request reusing a retired id must be
answered ``PAYMENT_ID_CONFLICT`` without touching anything.

How long the restarts take is the restart benchmark's to say
(``paystream bench restart``), not this test's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from eth_account import Account

from devtools.harness.collect import collect
from devtools.harness.history import seed_history
from devtools.harness.load import request
from schemas.partitioning import partition_for
from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import publish
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

HISTORY = 100_000
OLD = 1_000  # of them requested 8 days ago, past the 7-day retention; the rest a day ago
RATE_PER_S = 60.0


def _entries(p: FaultPipeline, table: str) -> int:
    entries = p.worker("worker-1").table_entries(table)
    assert entries is not None, f"no paystream_table_entries for {table}"
    return entries


def test_a_restart_with_100000_payments_in_history(faults: Faults) -> None:
    p = faults.pipeline()
    now = datetime.now(UTC)
    history = seed_history(
        p.settings, HISTORY, lambda i: now - timedelta(days=8 if i < OLD else 1), payers=500
    )
    p.mark(f"seeded {HISTORY} settled payments ({OLD} past retention) into the changelog")
    p.start(workers=1)
    payers = p.payers(16)
    p.fund(payers)
    count = scaled(300)
    with publishing(p.load(payers, payees=20), RATE_PER_S, count) as sent:
        p.sleep(0.3 * count / RATE_PER_S, 0.6 * count / RATE_PER_S)
        p.supervisor.kill("worker-1")
        p.supervisor.start("worker-1", ready_timeout_s=300)
        ids = sent.result().ids
    p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=300 + count / 20)

    # More payments on the restarted worker, its table index rebuilt by now:
    # retention waits for the rebuild after a restart (guarantees §12), and the
    # requests published while it was down may all be handled before it ends.
    more = scaled(200)
    later = p.load(payers, payees=20).publish(RATE_PER_S, None, more).ids
    p.mark(f"published {len(later)} more payments")
    assert_invariants(p, ids + later, timeout_s=300 + more / 20)

    # Each request retires up to 16 expired payments of its partition: the old
    # history of the partitions the payers use has left the table by now.
    n = p.settings.kafka_partitions
    used = {partition_for(payer, n) for payer in payers}
    expired = [k for k in history[:OLD] if partition_for(k.split(":")[0], n) in used]
    assert _entries(p, "retired") >= len(expired)
    assert _entries(p, "payments") <= HISTORY - len(expired) + count + more

    payer, pid = expired[0].split(":", 1)
    again = request(payer, str(Account.create().address), 1_000)
    publish(p.settings, [again.model_copy(update={"payment_id": uuid.UUID(pid)})], documented=True)
    answers = collect(p.settings, {pid}, timeout_s=60).failed
    assert answers[pid]["code"] == "PAYMENT_ID_CONFLICT", answers
    assert "ended long ago" in answers[pid]["reason"]
